/**
 * Child process of `bench/fairness.ts` and `bench/e2e.ts`: the producers, in a process of their own
 * as the ingress would be, so that adding 50k jobs does not stall the event loop that measures
 * dwell. Adds jobs either to per-tenant queues with `TenantQueues` (+ `announce`, as the ingress
 * does) or to one shared FIFO queue. Driven over IPC: `{ id, op, ... }` → `{ id, result }`.
 */
import { type JobsOptions, Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { DEFAULT_JOB_OPTIONS, type HeartflowJobData, TenantQueues } from '../../src/queues/tenantQueues';
import { installCommandCounter, sleep } from './queueBench';
import { latencyStats } from './stats';

export type ProducerMode = 'tenant' | 'fifo';

/** Payload of a benchmark job: its tenant and its class (noisy flood, quiet, backlog). */
export interface BenchJobData {
  t: string;
  c: 'flood' | 'quiet' | 'backlog' | 'trickle';
}

export type ProducerRequest =
  /** `jobs` jobs of one tenant as fast as possible, `addBulk` in chunks, one announce per chunk. */
  | { id: number; op: 'flood'; mode: ProducerMode; tenant: string; jobs: number; chunk: number }
  /** Open loop: every tenant sends `perSecond` jobs a second at scheduled times until `stop`. */
  | { id: number; op: 'quiet'; mode: ProducerMode; tenants: string[]; perSecond: number; maxMs: number }
  | { id: number; op: 'stop-quiet' }
  /** Backlogs added round robin over the tenants in chunks (`addBulk`), announced per chunk. */
  | { id: number; op: 'backlog'; mode: ProducerMode; counts: Record<string, number>; chunk: number }
  /** One `add` + `announce` per job as the ingress sends them, `concurrency` at once, tenants round robin. */
  | { id: number; op: 'trickle'; counts: Record<string, number>; concurrency: number }
  | { id: number; op: 'commands' }
  | { id: number; op: 'close' };

export interface ProducerReply {
  id: number;
  result?: unknown;
  error?: string;
}

export const FIFO_QUEUE = 'bench-fifo';
let sent = 0;
/** A heartflow job as the ingress makes it, carrying the benchmark's fields too. */
function ingressMessage(tenant: string): HeartflowJobData & BenchJobData {
  return {
    messageId: `msg_bench_${process.pid}_${++sent}`,
    tenantId: tenant,
    agentId: 'default',
    platform: 'qq',
    chatStreamId: 'bench',
    chatType: 'group',
    content: 'benchmark message',
    clientMessageId: null,
    replyTo: null,
    sender: { userId: 'u1', nickname: 'bench', cardname: null, groupId: 'g1', groupName: null },
    segments: [],
    mentioned: false,
    options: { enableMemory: false, enableEmoji: false, priority: 'normal' },
    receivedAt: Date.now(),
    source: 'http',
    t: tenant,
    c: 'trickle',
  };
}

/** Every heartflow job has a priority (`normal` = 5); the FIFO baseline uses the same options. */
export const JOB_OPTIONS: JobsOptions = { priority: 5 };

async function main(): Promise<void> {
  const counter = installCommandCounter();
  const prefix = process.env.BENCH_PREFIX!;
  const connection = new Redis(process.env.BENCH_REDIS_URL!, {
    maxRetriesPerRequest: null,
    connectionName: process.env.BENCH_CONNECTION_NAME ?? 'benchprod',
  });
  const queues = new TenantQueues(connection, prefix);
  let fifo: Queue | undefined;
  const fifoQueue = () => {
    if (!fifo) {
      fifo = new Queue(FIFO_QUEUE, {
        connection,
        prefix,
        defaultJobOptions: DEFAULT_JOB_OPTIONS,
      });
      fifo.on('error', () => undefined);
    }
    return fifo;
  };
  const queueOf = (mode: ProducerMode, tenant: string) =>
    mode === 'fifo' ? fifoQueue() : queues.queue(tenant, 'heartflow');

  const addChunk = async (mode: ProducerMode, tenant: string, c: BenchJobData['c'], n: number) => {
    const data: BenchJobData = { t: tenant, c };
    await queueOf(mode, tenant).addBulk(
      Array.from({ length: n }, () => ({ name: 'message', data, opts: JOB_OPTIONS })),
    );
    if (mode === 'tenant') await queues.announce(tenant, 'heartflow');
  };

  let stopQuiet: (() => void) | undefined;

  const handlers = {
    async flood(r: Extract<ProducerRequest, { op: 'flood' }>) {
      const start = Date.now();
      for (let done = 0; done < r.jobs; done += r.chunk) {
        await addChunk(r.mode, r.tenant, 'flood', Math.min(r.chunk, r.jobs - done));
      }
      return { jobs: r.jobs, ms: Date.now() - start };
    },

    async quiet(r: Extract<ProducerRequest, { op: 'quiet' }>) {
      const period = 1000 / r.perSecond;
      const t0 = Date.now() + 20;
      // Tenant i sends at t0 + i·period/n + k·period: evenly spread, never in lockstep.
      const next = r.tenants.map((_, i) => t0 + (i * period) / r.tenants.length);
      const lags: number[] = [];
      const inFlight = new Set<Promise<void>>();
      let stopped = false;
      stopQuiet = () => (stopped = true);
      let sent = 0;
      while (!stopped && Date.now() - t0 < r.maxMs) {
        const due = Math.min(...next);
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const now = Date.now();
        r.tenants.forEach((tenant, i) => {
          if (next[i]! > now) return;
          lags.push(now - next[i]!);
          next[i]! += period;
          sent++;
          const data: BenchJobData = { t: tenant, c: 'quiet' };
          const p = (async () => {
            await queueOf(r.mode, tenant).add('message', data, JOB_OPTIONS);
            if (r.mode === 'tenant') await queues.announce(tenant, 'heartflow');
          })().finally(() => inFlight.delete(p));
          inFlight.add(p);
        });
      }
      await Promise.all(inFlight);
      return { sent, schedule_lag: latencyStats(lags) };
    },

    // eslint-disable-next-line @typescript-eslint/require-await
    async 'stop-quiet'() {
      stopQuiet?.();
      return {};
    },

    async backlog(r: Extract<ProducerRequest, { op: 'backlog' }>) {
      const start = Date.now();
      const left = new Map(Object.entries(r.counts));
      while (left.size > 0) {
        await Promise.all(
          [...left].map(async ([tenant, n]) => {
            const k = Math.min(r.chunk, n);
            if (n - k === 0) left.delete(tenant);
            else left.set(tenant, n - k);
            await addChunk(r.mode, tenant, 'backlog', k);
          }),
        );
      }
      return { ms: Date.now() - start };
    },

    async trickle(r: Extract<ProducerRequest, { op: 'trickle' }>) {
      const start = Date.now();
      const order: string[] = [];
      const left = new Map(Object.entries(r.counts));
      while (left.size > 0) {
        for (const [tenant, n] of left) {
          order.push(tenant);
          if (n === 1) left.delete(tenant);
          else left.set(tenant, n - 1);
        }
      }
      let next = 0;
      const sender = async () => {
        while (next < order.length) {
          const tenant = order[next++]!;
          // Exactly the ingress's enqueue: the add and the announcement written together.
          await queues.enqueueHeartflow(ingressMessage(tenant));
        }
      };
      await Promise.all(Array.from({ length: r.concurrency }, sender));
      return { jobs: order.length, ms: Date.now() - start };
    },

    // eslint-disable-next-line @typescript-eslint/require-await
    async commands() {
      return counter.snapshot();
    },

    async close() {
      await queues.close();
      await fifo?.close();
      await connection.quit();
      setImmediate(() => process.exit(0));
      return {};
    },
  };

  process.on('message', (request: ProducerRequest) => {
    const run = (handlers[request.op] as (r: ProducerRequest) => Promise<unknown>).bind(handlers);
    run(request).then(
      (result) => process.send!({ id: request.id, result } satisfies ProducerReply),
      (err: unknown) => process.send!({ id: request.id, error: String(err) } satisfies ProducerReply),
    );
  });
  await connection.ping();
  process.send!({ id: 0, result: 'ready' } satisfies ProducerReply);
}

void main();
