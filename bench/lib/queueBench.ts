/**
 * Helpers of the queue benchmarks (`bench/fairness.ts`, `bench/e2e.ts`): Redis key cleanup, Redis's
 * own command counters (`INFO commandstats`), connection counts (`CLIENT LIST`), a client-side
 * count of the commands a process sends, Jain's index, a console sparkline, and writing results.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { Redis } from 'ioredis';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Deletes every key under `prefix` (`<prefix>*`); returns how many. */
export async function clearPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** `INFO commandstats` as command → calls. Redis counts commands run inside Lua scripts too. */
export async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
/** What the measuring connection itself sends: left out of the deltas. */
const OBSERVER_COMMANDS = new Set(['info', 'client|list', 'scan', 'unlink', 'ping']);

export interface CommandStatsDelta {
  /** Every command Redis executed, including the ones scripts ran (server-wide: other clients count too). */
  total_calls: number;
  /** Top-level script invocations (EVALSHA, …). */
  script_calls: number;
  /** The ten commands with the most calls. */
  top: Record<string, number>;
}

export function commandStatsDelta(
  before: Map<string, number>,
  after: Map<string, number>,
): CommandStatsDelta {
  const delta: [string, number][] = [];
  for (const [name, calls] of after) {
    if (OBSERVER_COMMANDS.has(name)) continue;
    const d = calls - (before.get(name) ?? 0);
    if (d > 0) delta.push([name, d]);
  }
  delta.sort((a, b) => b[1] - a[1]);
  return {
    total_calls: delta.reduce((a, [, d]) => a + d, 0),
    script_calls: delta.filter(([n]) => SCRIPT_COMMANDS.has(n)).reduce((a, [, d]) => a + d, 0),
    top: Object.fromEntries(delta.slice(0, 10)),
  };
}

/** CPU seconds the Redis server has used (`INFO cpu`: user + sys, main thread and others). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return get('used_cpu_sys') + get('used_cpu_user');
}

/** `CLIENT LIST`: connections whose name starts with `namePrefix`, and all connections of the server. */
export async function connectionCount(
  redis: Redis,
  namePrefix: string,
): Promise<{ ours: number; all: number }> {
  const list = (await redis.client('LIST')) as string;
  const lines = list.split('\n').filter((l) => l.trim() !== '');
  const ours = lines.filter((l) => / name=(\S*)/.exec(l)?.[1]?.startsWith(namePrefix)).length;
  return { ours, all: lines.length };
}

export interface CommandCount {
  /** Top-level commands written to Redis (a script call is one). */
  commands: number;
  /** Of those, commands that went in a pipeline or MULTI (several per round trip). */
  pipelined: number;
  /**
   * Round trips: per connection, the commands sent in one synchronous run (before the next tick)
   * count once. They are on the wire together and their caller waits for all of them at once.
   */
  roundTrips: number;
  byName: Record<string, number>;
}

interface CountedCommand {
  name: string;
}

/**
 * Counts, in this process, every command an ioredis client writes (by patching
 * `Redis.prototype.sendCommand`), except on connections for which `skip` says so. One count per
 * command, even when ioredis resends it after a reconnect.
 */
export function installCommandCounter(skip: (client: Redis) => boolean = () => false) {
  const proto = Redis.prototype as unknown as {
    sendCommand: (this: Redis, command: CountedCommand, stream?: unknown) => unknown;
  };
  const original = proto.sendCommand;
  const seen = new WeakSet<CountedCommand>();
  let commands = 0;
  let pipelined = 0;
  let roundTrips = 0;
  const sentThisTick = new Set<Redis>();
  const byName = new Map<string, number>();
  proto.sendCommand = function (this: Redis, command: CountedCommand, stream?: unknown) {
    if (!seen.has(command) && !skip(this)) {
      seen.add(command);
      commands++;
      if (stream) pipelined++;
      if (!sentThisTick.has(this)) {
        if (sentThisTick.size === 0) process.nextTick(() => sentThisTick.clear());
        sentThisTick.add(this);
        roundTrips++;
      }
      byName.set(command.name, (byName.get(command.name) ?? 0) + 1);
    }
    return original.call(this, command, stream);
  };
  return {
    snapshot(): CommandCount {
      return { commands, pipelined, roundTrips, byName: Object.fromEntries(byName) };
    },
  };
}

export function countDelta(before: CommandCount, after: CommandCount): CommandCount {
  const byName: Record<string, number> = {};
  for (const [name, n] of Object.entries(after.byName)) {
    const d = n - (before.byName[name] ?? 0);
    if (d > 0) byName[name] = d;
  }
  return {
    commands: after.commands - before.commands,
    pipelined: after.pipelined - before.pipelined,
    roundTrips: after.roundTrips - before.roundTrips,
    byName,
  };
}

/** Jain's fairness index: 1 when all equal, 1/n when one value has everything. */
export function jainIndex(xs: readonly number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const squares = xs.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares);
}

const BARS = ' ▁▂▃▄▅▆▇█';

/** One line of block characters, each value scaled to `max`. */
export function sparkline(values: readonly number[], max: number): string {
  return values
    .map((v) => BARS[max <= 0 ? 0 : Math.min(8, Math.max(v > 0 ? 1 : 0, Math.round((v / max) * 8)))]!)
    .join('');
}

/** Per-series rate over time as labelled sparklines sharing one scale. */
export function rateChart(
  title: string,
  bucketMs: number,
  series: Record<string, readonly number[]>,
): string {
  const perS = (n: number) => (n * 1000) / bucketMs;
  const max = Math.max(1, ...Object.values(series).flatMap((s) => s.map(perS)));
  const width = Math.max(...Object.keys(series).map((k) => k.length));
  const lines = Object.entries(series).map(([name, s]) => {
    const rates = s.map(perS);
    const mean = rates.reduce((a, b) => a + b, 0) / Math.max(1, rates.length);
    return `  ${name.padEnd(width)} |${sparkline(rates, max)}| mean ${mean.toFixed(0)}/s`;
  });
  return [`${title} (one column = ${bucketMs} ms, full block = ${max.toFixed(0)} jobs/s)`, ...lines].join(
    '\n',
  );
}

/** Counts of `times` (ms) per bucket of `bucketMs` from `t0`, `buckets` long. */
export function histogram(times: readonly number[], t0: number, bucketMs: number, buckets: number): number[] {
  const out = new Array<number>(buckets).fill(0);
  for (const t of times) {
    const i = Math.floor((t - t0) / bucketMs);
    if (i >= 0 && i < buckets) out[i]!++;
  }
  return out;
}

/**
 * Writes `bench/results/<name>-<timestamp>.<ext>` and `<name>-latest.<ext>`; returns both paths,
 * relative to the working directory.
 */
export async function writeResultFile(
  name: string,
  ext: string,
  content: string,
  finishedAt: Date,
): Promise<string[]> {
  const dir = path.resolve(__dirname, '..', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}-${finishedAt.toISOString().replace(/[:.]/g, '-')}.${ext}`);
  const latest = path.join(dir, `${name}-latest.${ext}`);
  await writeFile(file, content);
  await writeFile(latest, content);
  return [file, latest].map((p) => path.relative(process.cwd(), p));
}

/** Writes `result` as `bench/results/<name>-<timestamp>.json` and `<name>-latest.json`; returns both paths. */
export function writeResult(name: string, result: unknown, finishedAt: Date): Promise<string[]> {
  return writeResultFile(name, 'json', `${JSON.stringify(result, null, 2)}\n`, finishedAt);
}

export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
