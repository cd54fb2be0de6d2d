/** The isolation bench's chart: per topology, the quiet tenants' p99 over time beside the noisy rate. */
import { percentile } from '../stats';
import { type SvgChartOptions, svgCharts } from '../svgChart';
import type { TopologyRun, TopologySummary } from './report';

const WINDOW_MS = 5000;

export function isolationChart(runs: TopologyRun[], summaries: TopologySummary[]): string {
  const charts: SvgChartOptions[] = [];
  runs.forEach((run, i) => {
    const end = run.phases[run.phases.length - 1]!.to;
    const windows = Math.ceil((end - run.t0) / WINDOW_MS);
    const p99: number[] = [];
    for (let w = 0; w < windows; w++) {
      const from = run.t0 + w * WINDOW_MS;
      const rts = run.quiet
        .filter((s) => s.at >= from && s.at < from + WINDOW_MS)
        .map((s) => s.done - s.at)
        .sort((a, b) => a - b);
      p99.push(rts.length ? percentile(rts, 99) : 0);
    }
    const phases = run.phases.map((p) => `${p.name} ${Math.round((p.from - run.t0) / 1000)}s`).join(', ');
    charts.push({
      title: `${run.name}: quiet tenants' round trip p99 per ${WINDOW_MS / 1000} s (${phases})`,
      bucketMs: WINDOW_MS,
      unit: 'ms',
      yLabel: 'ms',
      series: { 'quiet p99': p99 },
    });
    const seconds = Math.ceil((end - run.t0) / 1000);
    const accepted = new Array<number>(seconds).fill(0);
    const processed = new Array<number>(seconds).fill(0);
    for (const p of run.phases) {
      const offset = Math.floor((p.from - run.t0) / 1000);
      const flood = run.floods[p.name];
      flood?.accepted.forEach((n, s) => {
        const at = Math.floor((flood.started_at - run.t0) / 1000) + s;
        if (at < seconds) accepted[at]! += n;
      });
      (run.noisyProcessed[p.name] ?? []).forEach((n, s) => {
        if (offset + s < seconds) processed[offset + s]! += n;
      });
    }
    const verdicts = Object.entries(summaries[i]!.verdicts)
      .filter(([, v]) => !v.pass)
      .map(([k]) => k);
    charts.push({
      title: `${run.name}: noisy tenant${verdicts.length ? ` (failed: ${verdicts.join(', ')})` : ''}`,
      bucketMs: 1000,
      series: { 'noisy accepted': accepted, 'noisy processed': processed },
      yLabel: 'messages/s',
    });
  });
  return svgCharts(charts);
}
