/**
 * CPU time of named processes between two points, read from /proc/<pid>/stat (utime + stime), and
 * the machine's busy time from /proc/stat. Linux only: elsewhere every figure reads 0.
 */
import { readFile } from 'node:fs/promises';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU seconds (user + system) the process has used so far; undefined once it is gone. */
export async function processCpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime), counted from 1 with pid and comm as 1 and 2.
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) so far. */
export async function machineCpuSeconds(): Promise<{ busy: number; all: number }> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => 'cpu 0')).split('\n')[0]!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const all = v.reduce((a, b) => a + b, 0);
  return { busy: (all - idle) / TICKS_PER_S, all: all / TICKS_PER_S };
}

/** pid → group name (e.g. `api`, `worker`, `redis`, `postgres`). */
export type ProcessGroups = Map<number, string>;

export interface CpuSnapshot {
  at: number;
  perPid: Map<number, { group: string; seconds: number }>;
  machine: { busy: number; all: number };
}

export async function cpuSnapshot(groups: ProcessGroups): Promise<CpuSnapshot> {
  const perPid = new Map<number, { group: string; seconds: number }>();
  for (const [pid, group] of groups) {
    const seconds = await processCpuSeconds(pid);
    if (seconds !== undefined) perPid.set(pid, { group, seconds });
  }
  return { at: Date.now(), perPid, machine: await machineCpuSeconds() };
}

export interface CpuDelta {
  wall_s: number;
  /** CPU seconds per group over the interval. */
  seconds: Record<string, number>;
  /** CPU % of one core per process (`group#pid`). */
  per_process_percent: Record<string, number>;
  /** Busy share of the whole machine, % of one core (200 = both cores of a 2-core machine). */
  machine_busy_percent: number;
}

/**
 * CPU between two snapshots. A process first seen in `after` (a PostgreSQL backend opened
 * meanwhile) counts with all its CPU; one gone by `after` counts with none of the interval.
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuDelta {
  const wall = (after.at - before.at) / 1000;
  const seconds: Record<string, number> = {};
  const perProcess: Record<string, number> = {};
  for (const [pid, a] of after.perPid) {
    const used = a.seconds - (before.perPid.get(pid)?.seconds ?? 0);
    seconds[a.group] = (seconds[a.group] ?? 0) + used;
    perProcess[`${a.group}#${pid}`] = Math.round((used / wall) * 1000) / 10;
  }
  const busy = after.machine.busy - before.machine.busy;
  const all = after.machine.all - before.machine.all;
  return {
    wall_s: wall,
    seconds,
    per_process_percent: perProcess,
    machine_busy_percent: all > 0 ? Math.round((busy / wall) * 1000) / 10 : 0,
  };
}
