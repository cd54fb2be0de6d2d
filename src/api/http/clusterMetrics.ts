import type { Redis } from 'ioredis';

import { cumulativeAt, type Histogram } from '../../domain/latencyHistogram';
import type { Keyspace } from '../../redis/keys';
import { mergeFields, readTotals } from '../../telemetry/telemetryReader';
import { SEP } from '../../telemetry/telemetryRecorder';

/**
 * The installation-wide series of `/metrics` that the workers measure (they serve no HTTP): job
 * run and queue-wait histograms by kind, LLM requests, tokens and latency by provider and model,
 * and the dispatchers' counters. They are running totals in Redis (`TelemetryRecorder.total`),
 * rendered here in the Prometheus text format. Histogram buckets come from the mergeable bins
 * (exact to the millisecond below 1 s; above, a bin straddling a bound counts at the next one).
 */

/** Latency bounds of every histogram here, seconds. */
export const LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Most (provider, model) pairs with series of their own; the rest are summed as model `other`. */
export const MAX_MODEL_SERIES = 20;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class Family {
  readonly lines: string[];
  constructor(name: string, type: 'counter' | 'histogram', help: string) {
    this.lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  }
}

function histogramLines(name: string, l: Record<string, string>, h: Histogram, sumMs: number): string[] {
  const cumulative = cumulativeAt(h, LATENCY_BOUNDS);
  let count = 0;
  for (const n of h.values()) count += n;
  return [
    ...LATENCY_BOUNDS.map((le, i) => `${name}_bucket${labels({ ...l, le: String(le) })} ${cumulative[i]}`),
    `${name}_bucket${labels({ ...l, le: '+Inf' })} ${count}`,
    `${name}_sum${labels(l)} ${sumMs / 1000}`,
    `${name}_count${labels(l)} ${count}`,
  ];
}

/** Label tuples (split on the separator) → their merged histogram and sum. */
function histograms(fields: Map<string, number>) {
  const merged = new Map<string, { histogram: Histogram; count: number; sumMs: number }>();
  mergeFields(merged, Object.fromEntries([...fields].map(([k, v]) => [k, String(v)])));
  return [...merged].map(([label, f]) => ({ parts: label.split(SEP), ...f }));
}

function jobFamilies(fields: Map<string, number>): string[] {
  const run = new Family(
    'maihive_job_duration_seconds',
    'histogram',
    'Job processing time by kind and outcome, all worker processes',
  );
  const wait = new Family(
    'maihive_job_queue_wait_seconds',
    'histogram',
    'Time jobs waited from due to started, by kind, all worker processes',
  );
  for (const h of histograms(fields)) {
    const [kind = '', a = '', b] = h.parts;
    if (b === 'run')
      run.lines.push(
        ...histogramLines('maihive_job_duration_seconds', { kind, outcome: a }, h.histogram, h.sumMs),
      );
    else if (a === 'wait')
      wait.lines.push(...histogramLines('maihive_job_queue_wait_seconds', { kind }, h.histogram, h.sumMs));
  }
  return [...run.lines, ...wait.lines];
}

/** Keeps the `MAX_MODEL_SERIES` busiest (provider, model) pairs; the others become `other`. */
function modelNamer(requests: Map<string, number>): (provider: string, model: string) => string {
  const busiest = new Set(
    [...requests]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_MODEL_SERIES)
      .map(([pm]) => pm),
  );
  return (provider, model) => (busiest.has(provider + SEP + model) ? model : 'other');
}

function llmFamilies(totals: Map<string, number>, latency: Map<string, number>): string[] {
  const byPair = new Map<string, number>();
  for (const [field, n] of totals) {
    const [provider = '', model = '', , what] = field.split(SEP);
    if (what === 'requests')
      byPair.set(provider + SEP + model, (byPair.get(provider + SEP + model) ?? 0) + n);
  }
  const name = modelNamer(byPair);
  const requests = new Map<string, number>();
  const tokens = new Map<string, number>();
  for (const [field, n] of totals) {
    const [provider = '', model = '', status = '', what] = field.split(SEP);
    const key = [provider, name(provider, model), status].join(SEP);
    const into = what === 'requests' ? requests : tokens;
    into.set(key, (into.get(key) ?? 0) + n);
  }
  const req = new Family(
    'maihive_llm_requests_total',
    'counter',
    'LLM HTTP calls by provider, model and status, all worker processes',
  );
  for (const [key, n] of requests) {
    const [provider = '', model = '', status = ''] = key.split(SEP);
    req.lines.push(`maihive_llm_requests_total${labels({ provider, model, status })} ${n}`);
  }
  const tok = new Family(
    'maihive_llm_tokens_total',
    'counter',
    'LLM tokens by provider, model and direction (prompt, completion)',
  );
  for (const [key, n] of tokens) {
    const [provider = '', model = '', direction = ''] = key.split(SEP);
    tok.lines.push(`maihive_llm_tokens_total${labels({ provider, model, direction })} ${n}`);
  }
  const renamed = new Map<string, number>();
  for (const [field, n] of latency) {
    const [provider = '', model = '', tail = ''] = field.split(SEP);
    const key = [provider, name(provider, model), tail].join(SEP);
    renamed.set(key, (renamed.get(key) ?? 0) + n);
  }
  const lat = new Family(
    'maihive_llm_request_duration_seconds',
    'histogram',
    'LLM HTTP call latency by provider and model',
  );
  for (const h of histograms(renamed)) {
    const [provider = '', model = ''] = h.parts;
    lat.lines.push(
      ...histogramLines('maihive_llm_request_duration_seconds', { provider, model }, h.histogram, h.sumMs),
    );
  }
  return [...req.lines, ...tok.lines, ...lat.lines];
}

function dispatcherFamily(totals: Map<string, number>): string[] {
  const f = new Family(
    'maihive_dispatcher_events_total',
    'counter',
    'Dispatcher fetches, hits, chains and settles by job kind, all worker processes',
  );
  for (const [field, n] of [...totals].sort()) {
    const [kind = '', event = ''] = field.split(SEP);
    f.lines.push(`maihive_dispatcher_events_total${labels({ kind, event })} ${n}`);
  }
  return f.lines;
}

/** The exposition text of the installation-wide families (one pipelined read of four hashes). */
export async function renderClusterMetrics(redis: Redis, keys: Keyspace): Promise<string> {
  const [job, llm, latency, dispatcher] = await Promise.all(
    ['job', 'llm', 'llm-latency', 'dispatcher'].map((family) => readTotals(redis, keys, family)),
  );
  return (
    [...jobFamilies(job!), ...llmFamilies(llm!, latency!), ...dispatcherFamily(dispatcher!)].join('\n') + '\n'
  );
}
