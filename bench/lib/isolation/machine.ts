/**
 * CPU of the whole machine and of the processes that share it, sampled from /proc once a second:
 * on two shared cores, whether PostgreSQL, Redis or the load generators starve the server tells
 * more than the server's own figures. Linux only; elsewhere it records nothing.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface MachineSample {
  at: number;
  /** Busy share of all cores over the last interval, 0–100 × cores. */
  busy_percent: number;
  /** CPU % (of one core) per group over the last interval. */
  groups: Record<string, number>;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

async function cpuTicks(pid: number): Promise<{ comm: string; ticks: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    // Fields 14 and 15 (utime, stime), counted from 1 with pid and comm as 1 and 2.
    return { comm, ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

async function totalTicks(): Promise<{ busy: number; all: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const all = v.reduce((a, b) => a + b, 0);
  return { busy: all - idle, all };
}

/**
 * Samples every second until stopped. `named` maps pids to group names (the server processes, the
 * flood client, the bench itself); other processes are grouped by command for `postgres` and
 * `redis-server`, the rest as `other:<command>`.
 */
export function startMachineSampler(named: () => Map<number, string>) {
  const samples: MachineSample[] = [];
  let last = new Map<number, number>();
  let lastTotal: { busy: number; all: number } | undefined;
  let lastAt = Date.now();
  let stopped = false;
  const sample = async () => {
    const names = named();
    const now = Date.now();
    const ticks = new Map<number, number>();
    const groups: Record<string, number> = {};
    const pids = await readdir('/proc').then(
      (ds) => ds.filter((d) => /^\d+$/.test(d)).map(Number),
      () => [],
    );
    if (pids.length === 0) return;
    for (const pid of pids) {
      const t = await cpuTicks(pid);
      if (!t) continue;
      ticks.set(pid, t.ticks);
      const before = last.get(pid);
      if (before === undefined || !lastTotal) continue;
      const group =
        names.get(pid) ?? (t.comm === 'postgres' || t.comm === 'redis-server' ? t.comm : `other:${t.comm}`);
      const pct = ((t.ticks - before) / TICKS_PER_S / ((now - lastAt) / 1000)) * 100;
      groups[group] = (groups[group] ?? 0) + pct;
    }
    const total = await totalTicks();
    if (lastTotal) {
      const cores = (total.all - lastTotal.all) / TICKS_PER_S / ((now - lastAt) / 1000);
      const busy = ((total.busy - lastTotal.busy) / Math.max(1, total.all - lastTotal.all)) * 100 * cores;
      samples.push({
        at: now,
        busy_percent: Math.round(busy),
        groups: Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, Math.round(v)])),
      });
    }
    last = ticks;
    lastTotal = total;
    lastAt = now;
  };
  const loop = (async () => {
    while (!stopped) {
      await sample();
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Mean CPU % per group, and of the machine, over the samples in [from, to). */
export function machineMeans(samples: readonly MachineSample[], from: number, to: number) {
  const inside = samples.filter((s) => s.at > from && s.at <= to);
  const n = Math.max(1, inside.length);
  const groups: Record<string, number> = {};
  for (const s of inside) for (const [k, v] of Object.entries(s.groups)) groups[k] = (groups[k] ?? 0) + v / n;
  return {
    busy_percent: Math.round(inside.reduce((a, s) => a + s.busy_percent, 0) / n),
    groups: Object.fromEntries(
      Object.entries(groups)
        .filter(([, v]) => v >= 0.5)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, Math.round(v)]),
    ),
  };
}
