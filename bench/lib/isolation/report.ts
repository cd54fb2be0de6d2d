/** `bench:isolation`'s figures: per topology and phase, with the issue's targets checked. */
import { formatTable, type LatencyStats, latencyStats, percentile } from '../stats';
import type { FloodResult } from './flood';
import { machineMeans, type MachineSample } from './machine';
import type { OperatorSample } from './operators';
import type { ProbeReport, ProbeTick } from './probe';
import type { QuietSample } from './quiet';
import type { TopologyName } from './topology';

export const TARGETS = {
  /** Quiet p99 round trip during the flood ÷ its value before the flood. */
  quiet_p99_ratio: { single: 3, split: 2 },
  /** Quiet p99 round trip during the flood, ms (split topology). */
  quiet_p99_ms_split: 150,
  errors_5xx: 0,
  lost_or_stuck: 0,
  /** Noisy processed/s with quiet tenants around ÷ (its processed/s alone − the quiet tenants' rate). */
  noisy_share: 0.8,
};

export interface PhaseWindow {
  name: string;
  from: number;
  to: number;
}

export interface Fate {
  statuses: Record<string, number>;
  missing: number;
  not_final: number;
  drain_ms: number;
}

export interface TopologyRun {
  name: TopologyName;
  t0: number;
  phases: PhaseWindow[];
  quiet: QuietSample[];
  operators: OperatorSample[];
  floods: Record<string, FloodResult>;
  noisyProcessed: Record<string, number[]>;
  fate: Fate;
  processes: Record<string, Record<string, ProbeReport & { name: string }>>;
  ticks: Record<string, ProbeTick[]>;
  solo:
    | {
        phases: PhaseWindow[];
        floods: Record<string, FloodResult>;
        processed: Record<string, number[]>;
        fate: Fate;
      }
    | undefined;
  crashed: { name: string; code: number | null }[];
  machine: MachineSample[];
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function serverStats(xs: (number | null)[]): { p50_ms: number; p99_ms: number } | null {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return v.length === 0 ? null : { p50_ms: percentile(v, 50), p99_ms: percentile(v, 99) };
}

export interface PhaseSummary {
  name: string;
  seconds: number;
  quiet: {
    sent: number;
    round_trip: LatencyStats;
    statuses: Record<string, number>;
    enqueue_to_start: { p50_ms: number; p99_ms: number } | null;
    start_to_reply: { p50_ms: number; p99_ms: number } | null;
  };
  noisy?: {
    requests: number;
    accepted_per_s: number;
    processed_per_s: number;
    refused_429: number;
    refusals: Record<string, number>;
    errors_5xx: number;
    other: Record<string, number>;
  };
  operators: Record<string, LatencyStats & { non_200: number }>;
  processes: Record<
    string,
    { cpu_percent: number; el_delay_p99_ms: number; el_delay_max_ms: number; rss_mb: number }
  >;
  /** CPU % of one core per process group (/proc), and of the machine (200 = both cores busy). */
  machine: ReturnType<typeof machineMeans>;
}

export interface TopologySummary {
  topology: TopologyName;
  phases: PhaseSummary[];
  solo: Record<
    string,
    { accepted_per_s: number; processed_per_s: number; refused_429: number; errors_5xx: number }
  > | null;
  fate: Fate & { solo?: Fate };
  crashed: { name: string; code: number | null }[];
  verdicts: Record<string, { value: number; target: string; pass: boolean }>;
}

function summarizePhase(run: TopologyRun, w: PhaseWindow): PhaseSummary {
  const seconds = (w.to - w.from) / 1000;
  const quiet = run.quiet.filter((s) => s.at >= w.from && s.at < w.to);
  const statuses: Record<string, number> = {};
  for (const s of quiet) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const flood = run.floods[w.name];
  const processed = run.noisyProcessed[w.name] ?? [];
  const operators: PhaseSummary['operators'] = {};
  for (const endpoint of ['health', 'admin_queues'] as const) {
    const xs = run.operators.filter((o) => o.endpoint === endpoint && o.at >= w.from && o.at < w.to);
    operators[endpoint] = {
      ...latencyStats(xs.map((o) => o.ms)),
      non_200: xs.filter((o) => o.http !== 200).length,
    };
  }
  const processes: PhaseSummary['processes'] = {};
  for (const [name, byPhase] of Object.entries(run.processes)) {
    const p = byPhase[w.name];
    if (!p) continue;
    processes[name] = {
      cpu_percent: r1((p.cpu_us / 1000 / Math.max(1, p.wall_ms)) * 100),
      el_delay_p99_ms: p.el_p99_ms,
      el_delay_max_ms: p.el_max_ms,
      rss_mb: r1(p.rss_bytes / 2 ** 20),
    };
  }
  return {
    name: w.name,
    seconds: r1(seconds),
    quiet: {
      sent: quiet.length,
      round_trip: latencyStats(quiet.map((s) => s.done - s.at)),
      statuses,
      enqueue_to_start: serverStats(quiet.map((s) => s.queue_wait_ms)),
      start_to_reply: serverStats(quiet.map((s) => s.processing_ms)),
    },
    ...(flood
      ? {
          noisy: {
            requests: sum(flood.requests),
            accepted_per_s: r1(sum(flood.accepted) / seconds),
            processed_per_s: r1(sum(processed) / seconds),
            refused_429: sum(flood.refused_429),
            refusals: flood.refusals,
            errors_5xx: sum(flood.errors_5xx),
            other: flood.other,
          },
        }
      : {}),
    operators,
    processes,
    machine: machineMeans(run.machine, w.from, w.to),
  };
}

export function summarize(run: TopologyRun): TopologySummary {
  const phases = run.phases.map((w) => summarizePhase(run, w));
  const byName = new Map(phases.map((p) => [p.name, p]));
  const solo = run.solo
    ? Object.fromEntries(
        run.solo.phases.map((w) => {
          const mode = w.name.replace('solo_', '');
          const f = run.solo!.floods[mode]!;
          const seconds = (w.to - w.from) / 1000;
          return [
            mode,
            {
              accepted_per_s: r1(sum(f.accepted) / seconds),
              processed_per_s: r1(sum(run.solo!.processed[w.name] ?? []) / seconds),
              refused_429: sum(f.refused_429),
              errors_5xx: sum(f.errors_5xx),
            },
          ];
        }),
      )
    : null;
  const verdicts: TopologySummary['verdicts'] = {};
  const before = byName.get('before')!.quiet.round_trip.p99_ms;
  const ratioTarget = TARGETS.quiet_p99_ratio[run.name];
  for (const mode of ['batch', 'single'] as const) {
    const p = byName.get(`flood_${mode}`)!;
    const ratio = r3(p.quiet.round_trip.p99_ms / before);
    verdicts[`quiet_p99_ratio_${mode}`] = {
      value: ratio,
      target: `≤ ${ratioTarget}`,
      pass: ratio <= ratioTarget,
    };
    if (run.name === 'split') {
      const v = p.quiet.round_trip.p99_ms;
      verdicts[`quiet_p99_ms_${mode}`] = {
        value: v,
        target: `≤ ${TARGETS.quiet_p99_ms_split}`,
        pass: v <= TARGETS.quiet_p99_ms_split,
      };
    }
    if (solo && p.noisy) {
      const quietRate = p.quiet.sent / p.seconds;
      const left = solo[mode]!.processed_per_s - quietRate;
      const share = r3(p.noisy.processed_per_s / Math.max(1e-9, left));
      verdicts[`noisy_share_${mode}`] = {
        value: share,
        target: `≥ ${TARGETS.noisy_share}`,
        pass: share >= TARGETS.noisy_share,
      };
    }
  }
  const quiet5xx = run.quiet.filter((s) => s.http >= 500 || s.http === 0).length;
  const noisy5xx =
    sum(phases.map((p) => p.noisy?.errors_5xx ?? 0)) +
    sum(Object.values(solo ?? {}).map((s) => s.errors_5xx));
  const operator5xx = run.operators.filter((o) => o.http >= 500 || o.http === 0).length;
  const errors = quiet5xx + noisy5xx + operator5xx;
  verdicts.errors_5xx = { value: errors, target: '= 0', pass: errors === TARGETS.errors_5xx };
  const lost =
    run.fate.missing + run.fate.not_final + (run.solo ? run.solo.fate.missing + run.solo.fate.not_final : 0);
  verdicts.lost_or_stuck = { value: lost, target: '= 0', pass: lost === TARGETS.lost_or_stuck };
  verdicts.crashed_processes = { value: run.crashed.length, target: '= 0', pass: run.crashed.length === 0 };
  return {
    topology: run.name,
    phases,
    solo,
    fate: { ...run.fate, ...(run.solo ? { solo: run.solo.fate } : {}) },
    crashed: run.crashed,
    verdicts,
  };
}

export function printSummary(summaries: TopologySummary[]): void {
  const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(0));
  for (const s of summaries) {
    console.log(`\n=== ${s.topology} ===`);
    console.log(
      formatTable([
        [
          'phase',
          'quiet n',
          'rt p50',
          'rt p95',
          'rt p99',
          'wait p99',
          'proc p99',
          'noisy acc/s',
          'noisy done/s',
          '429s',
          'health p99',
          'queues p99',
        ],
        ...s.phases.map((p) => [
          p.name,
          `${p.quiet.sent}`,
          f(p.quiet.round_trip.p50_ms),
          f(p.quiet.round_trip.p95_ms),
          f(p.quiet.round_trip.p99_ms),
          f(p.quiet.enqueue_to_start?.p99_ms),
          f(p.quiet.start_to_reply?.p99_ms),
          p.noisy ? `${p.noisy.accepted_per_s}` : '-',
          p.noisy ? `${p.noisy.processed_per_s}` : '-',
          p.noisy ? `${p.noisy.refused_429}` : '-',
          f(p.operators.health?.p99_ms),
          f(p.operators.admin_queues?.p99_ms),
        ]),
      ]),
    );
    console.log(
      formatTable([
        ['phase', ...Object.keys(s.phases[0]!.processes).flatMap((n) => [`${n} cpu%`, `${n} el p99`])],
        ...s.phases.map((p) => [
          p.name,
          ...Object.values(p.processes).flatMap((x) => [`${x.cpu_percent}`, `${x.el_delay_p99_ms}`]),
        ]),
      ]),
    );
    for (const p of s.phases) console.log(`machine ${p.name}: ${JSON.stringify(p.machine)}`);
    if (s.solo) console.log(`solo flood: ${JSON.stringify(s.solo)}`);
    console.log(`fate: ${JSON.stringify(s.fate)}`);
    for (const [k, v] of Object.entries(s.verdicts)) {
      console.log(
        `${k.padEnd(26)} ${String(v.value).padStart(8)} (target ${v.target}) ${v.pass ? 'PASS' : 'FAIL'}`,
      );
    }
  }
}
