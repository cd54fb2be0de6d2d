import type { Redis } from 'ioredis';

import type { Clock } from '../domain/clock';
import { binOf } from '../domain/latencyHistogram';
import type { Logger } from '../logger';
import { hashTagOf, isCluster } from '../redis/connect';
import type { Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';

/**
 * What every process (API and worker) measures, summed across processes in Redis so that any API
 * process can answer for the installation (`/stats/api`, `/stats/performance`, `/monitor/status`,
 * the job and LLM series of `/metrics`).
 *
 * Observations accumulate in memory and are flushed every `flushMs` in one script call (`FLUSH`,
 * one per hash tag on a cluster): a request costs no Redis round trip of its own. Each latency sample lands in three buckets at
 * once, a minute, an hour and a day (the roll-up is done at write time, so no job has to merge
 * minutes later), each once for the installation and once for the tenant when there is one.
 * Bucket keys expire after their retention (`BUCKET_RETENTION_MS`): the purge is Redis's.
 */

/** Bucket sizes and how long each is kept, ms. */
export const BUCKET_RETENTION_MS = { m: 4 * 3_600_000, h: 8 * 86_400_000, d: 92 * 86_400_000 } as const;
export type TelemetrySize = keyof typeof BUCKET_RETENTION_MS;
const SIZE_MS: Record<TelemetrySize, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `api`: label `METHOD route\tstatus class`; `job`: label `kind\toutcome\twait|run`; `llm`
 * (installation only): label `provider\tstatus`.
 */
export type TelemetrySeries = 'api' | 'job' | 'llm';

/** Field separator inside labels and between a label and its bin. */
export const SEP = '\t';
/** Field suffix of a label's summed latency, µs (the bins hold counts). */
export const SUM_FIELD = 'sum';

/**
 * A flush's increments in one command: for each key, its field count and expiry (ms since the
 * epoch, 0 = none), then its field and increment pairs. A pipeline of HINCRBYs cost the client a
 * command object, a promise and a reply per field (hundreds per flush in a busy process).
 */
const FLUSH = new RedisScript(`
local a = 1
for i = 1, #KEYS do
  local fields, expiry = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[i], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  if expiry > 0 then redis.call('PEXPIREAT', KEYS[i], expiry) end
end
return #KEYS`);

/** Most increments one flush script carries (a longer flush is split, so none blocks Redis long). */
const FIELDS_PER_SCRIPT = 500;

export interface TelemetryRecorderOptions {
  redis: Redis;
  keys: Keyspace;
  clock: Clock;
  logger: Logger;
  /** Flush period, ms. Default 1000. */
  flushMs?: number;
}

/**
 * Samples of one series, label, latency bin, scope and minute since the last flush: what a
 * request costs the recorder is one map entry update; the minute, hour and day keys, for the
 * installation and the tenant, are made once per flush.
 */
interface Samples {
  series: TelemetrySeries;
  label: string;
  bin: string;
  tenantId: string | undefined;
  /** Start of the sample's minute, ms (its hour and day follow from it). */
  minute: number;
  count: number;
  micros: number;
}

export class TelemetryRecorder {
  private pending = new Map<string, Map<string, number>>();
  private samples = new Map<string, Samples>();
  private expiries = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly o: TelemetryRecorderOptions) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.flush().catch((err: unknown) => this.o.logger.warn({ err }, 'telemetry flush failed'));
    }, this.o.flushMs ?? 1000);
    this.timer.unref();
  }

  /** One latency sample of a series (ms), for the installation and, when given, the tenant. */
  observe(series: TelemetrySeries, label: string, ms: number, tenantId?: string): void {
    const at = this.o.clock.now();
    const minute = at - (at % SIZE_MS.m);
    const bin = binOf(ms);
    const micros = Math.max(0, Math.round(ms * 1000));
    const id = `${series}\n${tenantId ?? ''}\n${minute}\n${label}\n${bin}`;
    const entry = this.samples.get(id);
    if (entry) {
      entry.count++;
      entry.micros += micros;
      return;
    }
    this.samples.set(id, { series, label, bin: String(bin), tenantId, minute, count: 1, micros });
  }

  /** Spreads the accumulated samples over their minute, hour and day buckets (see `observe`). */
  private bucketSamples(): void {
    for (const s of this.samples.values()) {
      for (const size of ['m', 'h', 'd'] as const) {
        // Hour and day boundaries are minute boundaries: the minute's start picks the same bucket.
        const start = s.minute - (s.minute % SIZE_MS[size]);
        const expiry = start + SIZE_MS[size] + BUCKET_RETENTION_MS[size];
        for (const scope of s.tenantId === undefined ? [null] : [null, s.tenantId]) {
          const key = this.o.keys.telemetryBucket(scope, s.series, size, start);
          this.add(key, `${s.label}${SEP}${s.bin}`, s.count);
          this.add(key, `${s.label}${SEP}${SUM_FIELD}`, s.micros);
          this.expiries.set(key, expiry);
        }
      }
    }
    this.samples.clear();
  }

  /** Adds to an installation-wide running total (never expires; bounded fields only). */
  total(family: string, field: string, n = 1): void {
    this.add(this.o.keys.telemetryTotals(family), field, n);
  }

  /** A latency sample into a running total's histogram (`field\tbin` counts and `field\tsum` µs). */
  totalLatency(family: string, field: string, ms: number): void {
    this.total(family, `${field}${SEP}${binOf(ms)}`);
    this.total(family, `${field}${SEP}${SUM_FIELD}`, Math.max(0, Math.round(ms * 1000)));
  }

  /** Writes what accumulated; concurrent calls share one write. Lost (logged) if Redis is away. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch((err: unknown) => this.o.logger.warn({ err }, 'last telemetry flush failed'));
  }

  private add(key: string, field: string, n: number): void {
    let fields = this.pending.get(key);
    if (!fields) this.pending.set(key, (fields = new Map<string, number>()));
    fields.set(field, (fields.get(field) ?? 0) + n);
  }

  private async write(): Promise<void> {
    this.bucketSamples();
    if (this.pending.size === 0) return;
    const pending = this.pending;
    const expiries = this.expiries;
    this.pending = new Map();
    this.expiries = new Map();
    // A cluster runs a script only on keys of one slot: the installation's buckets (`{_tm}`) and
    // each tenant's (its own tag) are then written by one script call per hash tag.
    const cluster = isCluster(this.o.redis);
    const groups = new Map<string, string[]>();
    for (const key of pending.keys()) {
      const group = cluster ? hashTagOf(key) : '';
      const keys = groups.get(group);
      if (keys) keys.push(key);
      else groups.set(group, [key]);
    }
    const scripts: { keys: string[]; args: (string | number)[] }[] = [];
    for (const keys of groups.values()) {
      let script = { keys: [] as string[], args: [] as (string | number)[] };
      let fields = 0;
      for (const key of keys) {
        if (fields >= FIELDS_PER_SCRIPT) {
          scripts.push(script);
          script = { keys: [], args: [] };
          fields = 0;
        }
        const increments = pending.get(key)!;
        script.keys.push(key);
        script.args.push(increments.size, expiries.get(key) ?? 0);
        for (const [field, n] of increments) script.args.push(field, n);
        fields += increments.size;
      }
      scripts.push(script);
    }
    await Promise.all(scripts.map(({ keys, args }) => FLUSH.run(this.o.redis, keys, args)));
  }
}
