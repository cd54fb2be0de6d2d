/**
 * What an operator sees during the flood: `GET /health` and `GET /admin/queues` polled at a fixed
 * interval, each timed, so the bench can show that the operators' endpoints stay fast.
 */
import http from 'node:http';

import { request } from './http';

export interface OperatorSample {
  endpoint: 'health' | 'admin_queues';
  at: number;
  ms: number;
  http: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export function startOperatorProbe(url: string, adminBearer: string, intervalMs = 500) {
  const samples: OperatorSample[] = [];
  let stopped = false;
  const poll = async (
    endpoint: OperatorSample['endpoint'],
    path: string,
    headers: Record<string, string>,
  ) => {
    while (!stopped) {
      const at = Date.now();
      const res = await request(url, 'GET', path, { agent, headers, timeoutMs: 30_000 });
      samples.push({ endpoint, at, ms: Date.now() - at, http: res.status });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, at + intervalMs - Date.now())));
    }
  };
  const loops = [
    poll('health', '/health', {}),
    poll('admin_queues', '/admin/queues', { authorization: `Bearer ${adminBearer}` }),
  ];
  return {
    samples,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
