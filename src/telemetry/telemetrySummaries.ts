import { type Histogram, latencySummary, mergeInto } from '../domain/latencyHistogram';
import type { LabelFigures } from './telemetryReader';
import { SEP } from './telemetryRecorder';

/** What `/stats/api` says about one route (or all of them). */
export interface EndpointSummary {
  endpoint: string;
  requests: number;
  /** 5xx answers. */
  errors: number;
  /** 4xx answers. */
  client_errors: number;
  /** 5xx per request, %. */
  error_rate_percent: number;
  latency_ms: { avg: number | null; p50: number | null; p95: number | null; p99: number | null };
}

interface Acc {
  histogram: Histogram;
  count: number;
  sumMs: number;
  errors: number;
  clientErrors: number;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round2 = (v: number) => Math.round(v * 100) / 100;

function summary(endpoint: string, a: Acc): EndpointSummary {
  return {
    endpoint,
    requests: a.count,
    errors: a.errors,
    client_errors: a.clientErrors,
    error_rate_percent: a.count === 0 ? 0 : round2((a.errors / a.count) * 100),
    latency_ms: { avg: a.count === 0 ? null : round1(a.sumMs / a.count), ...latencySummary(a.histogram) },
  };
}

const empty = (): Acc => ({ histogram: new Map(), count: 0, sumMs: 0, errors: 0, clientErrors: 0 });

function absorb(a: Acc, f: LabelFigures, cls: string): void {
  mergeInto(a.histogram, f.histogram);
  a.count += f.count;
  a.sumMs += f.sumMs;
  if (cls === '5xx') a.errors += f.count;
  if (cls === '4xx') a.clientErrors += f.count;
}

/**
 * Per route (`METHOD /path`) and overall, from the `api` series: status classes merged, latency
 * percentiles from the merged bins. `endpoint` keeps one route path (any method) or one
 * `METHOD /path`. Busiest routes first.
 */
export function summariseEndpoints(
  series: ReadonlyMap<string, LabelFigures>,
  endpoint?: string,
): { endpoints: EndpointSummary[]; totals: EndpointSummary } {
  const byRoute = new Map<string, Acc>();
  const total = empty();
  for (const [label, f] of series) {
    const [route = '', cls = ''] = label.split(SEP);
    if (endpoint !== undefined && route !== endpoint && route.slice(route.indexOf(' ') + 1) !== endpoint)
      continue;
    let a = byRoute.get(route);
    if (!a) byRoute.set(route, (a = empty()));
    absorb(a, f, cls);
    absorb(total, f, cls);
  }
  const endpoints = [...byRoute]
    .map(([route, a]) => summary(route, a))
    .sort((x, y) => y.requests - x.requests || (x.endpoint < y.endpoint ? -1 : 1));
  return { endpoints, totals: summary('*', total) };
}

/** What `/stats/performance` says about one job kind. */
export interface KindSummary {
  kind: string;
  jobs: number;
  failed: number;
  jobs_per_second: number;
  queue_wait_ms: { p50: number | null; p95: number | null; p99: number | null };
  processing_ms: { p50: number | null; p95: number | null; p99: number | null };
}

/** Per job kind from the `job` series, over `seconds` of the period. */
export function summariseKinds(series: ReadonlyMap<string, LabelFigures>, seconds: number): KindSummary[] {
  const kinds = new Map<string, { wait: Histogram; run: Histogram; jobs: number; failed: number }>();
  for (const [label, f] of series) {
    const [kind = '', outcome = '', what = ''] = label.split(SEP);
    let k = kinds.get(kind);
    if (!k) kinds.set(kind, (k = { wait: new Map(), run: new Map(), jobs: 0, failed: 0 }));
    if (what === 'wait') mergeInto(k.wait, f.histogram);
    if (what === 'run') {
      mergeInto(k.run, f.histogram);
      k.jobs += f.count;
      if (outcome === 'failed') k.failed += f.count;
    }
  }
  return [...kinds]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([kind, k]) => ({
      kind,
      jobs: k.jobs,
      failed: k.failed,
      jobs_per_second: round2(k.jobs / Math.max(1, seconds)),
      queue_wait_ms: latencySummary(k.wait),
      processing_ms: latencySummary(k.run),
    }));
}

/**
 * The LLM service as the `llm` series of a recent window says: `unknown` without calls, `degraded`
 * when more than half of them failed, else `healthy`.
 */
export function llmHealth(series: ReadonlyMap<string, LabelFigures>): 'healthy' | 'degraded' | 'unknown' {
  let calls = 0;
  let failures = 0;
  for (const [label, f] of series) {
    calls += f.count;
    if (!label.endsWith(`${SEP}success`)) failures += f.count;
  }
  if (calls === 0) return 'unknown';
  return failures / calls > 0.5 ? 'degraded' : 'healthy';
}
