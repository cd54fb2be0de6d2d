import { randomBytes } from 'node:crypto';
import { cpus, freemem, hostname, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import type { Redis } from 'ioredis';

import type { Clock } from '../domain/clock';
import type { Logger } from '../logger';
import type { Keyspace } from '../redis/keys';

/** What one live process says about itself every `BEAT_MS` (read by `/monitor/status`). */
export interface ProcessReport {
  process_id: string;
  roles: string[];
  pid: number;
  host: string;
  started_at: string;
  uptime_seconds: number;
  /** CPU time since the previous beat over wall time, % of one core. */
  cpu_percent: number;
  rss_bytes: number;
  heap_used_bytes: number;
  /** p99 event-loop delay since the previous beat, ms. */
  event_loop_delay_p99_ms: number;
  host_memory_used_percent: number;
  host_load_1m_per_cpu: number;
  host_cpus: number;
  reported_at: string;
}

export const BEAT_MS = 5000;
/** A process that missed this many beats is taken for gone. */
const MISSED_BEATS = 3;

/**
 * The process's heartbeat in Redis: a JSON report under its own key (expiring) and its id in the
 * set of live processes (scored by expiry), so any API process lists every live API and worker
 * process of the installation.
 */
export class ProcessBeat {
  readonly processId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly roles = new Set<string>();
  /** Made when the beat starts: an unused histogram would count as an open handle until collected. */
  private delay: ReturnType<typeof monitorEventLoopDelay> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt: number;

  constructor(
    private readonly o: { redis: Redis; keys: Keyspace; clock: Clock; logger: Logger; startedAt: number },
  ) {
    this.lastAt = o.clock.now();
  }

  /** Names a role this process runs (`api`, `worker`) and starts beating at the first. */
  addRole(role: string): void {
    this.roles.add(role);
    if (this.timer) return;
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.timer = setInterval(() => void this.beat(), BEAT_MS);
    this.timer.unref();
    void this.beat();
  }

  report(): ProcessReport {
    const now = this.o.clock.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const wallMs = Math.max(1, now - this.lastAt);
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const p99 = this.delay && this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0;
    this.delay?.reset();
    const mem = process.memoryUsage();
    return {
      process_id: this.processId,
      roles: [...this.roles].sort(),
      pid: process.pid,
      host: hostname(),
      started_at: new Date(this.o.startedAt).toISOString(),
      uptime_seconds: Math.round((now - this.o.startedAt) / 1000),
      cpu_percent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      event_loop_delay_p99_ms: Math.round(p99 * 10) / 10,
      host_memory_used_percent: Math.round((1 - freemem() / totalmem()) * 1000) / 10,
      host_load_1m_per_cpu: Math.round((loadavg()[0]! / Math.max(1, cpus().length)) * 100) / 100,
      host_cpus: cpus().length,
      reported_at: new Date(now).toISOString(),
    };
  }

  async beat(): Promise<void> {
    const { redis, keys, clock } = this.o;
    const ttl = BEAT_MS * MISSED_BEATS;
    try {
      await redis
        .multi()
        .set(keys.processBeat(this.processId), JSON.stringify(this.report()), 'PX', ttl)
        .zadd(keys.processes(), clock.now() + ttl, this.processId)
        .exec();
    } catch (err) {
      this.o.logger.warn({ err }, 'process heartbeat failed');
    }
  }

  /** Stops beating and leaves the live set at once. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.delay?.disable();
    this.delay = undefined;
    if (this.roles.size === 0) return;
    await this.o.redis
      .multi()
      .del(this.o.keys.processBeat(this.processId))
      .zrem(this.o.keys.processes(), this.processId)
      .exec()
      .catch(() => undefined);
  }
}

/** Reports of every live process (stale ids are dropped from the set on the way). */
export async function liveProcesses(redis: Redis, keys: Keyspace, nowMs: number): Promise<ProcessReport[]> {
  await redis.zremrangebyscore(keys.processes(), '-inf', String(nowMs));
  const ids = await redis.zrange(keys.processes(), '0', '-1');
  if (ids.length === 0) return [];
  const raw = await redis.mget(ids.map((id) => keys.processBeat(id)));
  return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as ProcessReport);
}
