/**
 * The quiet tenants of `bench:isolation`: each sends mentions of the bot at Poisson arrivals
 * (open loop, seeded), through `POST /chat/send?wait=…` or the OneBot v11 adapter with `?wait`, as
 * chat adapters do, and records every round trip from its scheduled time (so a slow server cannot
 * hide its delay by slowing the sender: no coordinated omission).
 */
import http from 'node:http';

import { seededRandom } from '../stats';
import { type BenchTenant, dataOf, type HttpResult, oneBotEvent, request } from './http';

export interface QuietSample {
  tenant: string;
  via: 'chat' | 'onebot';
  /** Scheduled send time and answer time, ms since the epoch. */
  at: number;
  done: number;
  http: number;
  status: string;
  message_id: string | undefined;
  /** Server-side: enqueue → start and start → outcome, from the answer. */
  queue_wait_ms: number | null;
  processing_ms: number | null;
  timing: HttpResult['timing'];
}

export interface QuietOptions {
  url: string;
  tenants: BenchTenant[];
  /** Messages per second per tenant (Poisson). */
  ratePerTenant: number;
  waitMs: number;
  streamsPerTenant: number;
  seed: number;
}

/** Starts every quiet tenant's sender; `stop()` ends the schedule and waits for answers in flight. */
export function startQuietTenants(o: QuietOptions): { samples: QuietSample[]; stop(): Promise<void> } {
  const samples: QuietSample[] = [];
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  // OneBot message ids are idempotency keys for 24 h: unique per run, or a rerun against the same
  // Redis would get duplicates.
  let messageSeq = (Math.floor(Date.now() / 1000) % 100_000) * 10_000;

  o.tenants.forEach((tenant, index) => {
    const rng = seededRandom(o.seed + index);
    const via: QuietSample['via'] = index % 2 === 0 ? 'chat' : 'onebot';
    const headers = { 'x-api-key': tenant.apiKey };
    // Each tenant is its own adapter, with its own keep-alive connections.
    const agent = new http.Agent({ keepAlive: true });
    let next = Date.now() + rng() * 1000;
    const send = (at: number) => {
      const stream = Math.floor(rng() * o.streamsPerTenant);
      const user = 10_000 + Math.floor(rng() * 50);
      const text = `今天吃什么？第${messageSeq}问`;
      const id = messageSeq++;
      const p =
        via === 'chat'
          ? request(o.url, 'POST', `/chat/send?wait=${o.waitMs}`, {
              agent,
              headers,
              body: {
                message: `@麦麦 ${text}`,
                chat_stream_id: `quiet-${stream}`,
                platform: 'qq',
                sender_info: { user_id: String(user), username: `用户${user}`, group_id: `9${stream}` },
              },
            })
          : request(o.url, 'POST', `/adapters/onebot/v11?wait=${o.waitMs}`, {
              agent,
              headers,
              body: oneBotEvent(900_000 + stream, user, id, text),
            });
      const tracked: Promise<void> = p
        .then((res) => {
          const d = res.status === 200 ? dataOf<Record<string, unknown>>(res) : undefined;
          samples.push({
            tenant: tenant.tenantId,
            via,
            at,
            done: Date.now(),
            http: res.status,
            status: typeof d?.status === 'string' ? d.status : `http_${res.status}`,
            message_id: typeof d?.message_id === 'string' ? d.message_id : undefined,
            queue_wait_ms: typeof d?.queue_wait_ms === 'number' ? d.queue_wait_ms : null,
            processing_ms: typeof d?.processing_time_ms === 'number' ? d.processing_time_ms : null,
            timing: res.timing,
          });
        })
        .finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };
    const schedule = () => {
      if (stopped) return;
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          if (stopped) return;
          const at = next;
          // Exponential inter-arrival times: a Poisson process of `ratePerTenant` per second.
          next += (-Math.log(1 - rng()) * 1000) / o.ratePerTenant;
          send(at);
          schedule();
        },
        Math.max(0, next - Date.now()),
      );
      timers.add(timer);
    };
    schedule();
  });

  return {
    samples,
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
