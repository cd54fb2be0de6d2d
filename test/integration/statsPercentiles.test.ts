import { percentile } from '../../src/domain/usageBuckets';
import { SEP } from '../../src/telemetry/telemetryRecorder';
import { jobTelemetry } from '../../src/workers/workerTelemetry';
import { startTestApp, type TestApp } from '../support/testApp';

/**
 * Latency percentiles of `/stats/api` and `/stats/performance` for periods answered from minute,
 * hour and day buckets: 60 days of samples written at their own (injected) times, each period's
 * p50/p95/p99 checked against the nearest-rank percentiles of exactly the samples of its window.
 * Bucket percentiles averaged, or a bucket's p99 taken as the period's, would not match: the
 * samples of every day and hour are drawn from a different range.
 */

const MIN = 60_000;
const H = 60 * MIN;
const DAY = 24 * H;
const realNow = Date.now();
let now = realNow;
let app: TestApp;

interface Sample {
  at: number;
  api: number;
  wait: number;
  run: number;
}
const samples: Sample[] = [];

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  app = await startTestApp({ clock: { now: () => now } });
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme')`);
  const rand = random(314);
  // Whole milliseconds below 1 s: there the histogram's bins are exact. Each hour draws from its
  // own range, so the percentiles of a day or a period differ from any average of its buckets'.
  const draw = (at: number, spread: number) => {
    const hour = Math.floor(at / H);
    const low = (hour * 97) % 600;
    return 1 + low + Math.floor(rand() * spread);
  };
  // Dense in the last 3 hours (minute windows), hourly over 8 days, a few a day over 60 days.
  const times: number[] = [];
  for (let i = 0; i < 400; i++) times.push(realNow - Math.floor(rand() * 3 * H));
  for (let i = 0; i < 1200; i++) times.push(realNow - Math.floor(rand() * 8 * DAY));
  for (let i = 0; i < 900; i++) times.push(realNow - Math.floor(rand() * 60 * DAY));
  const record = jobTelemetry(app.deps.telemetry);
  for (const at of times) {
    const s: Sample = { at, api: draw(at, 300), wait: draw(at, 200), run: draw(at, 390) };
    samples.push(s);
    now = at;
    app.deps.telemetry.observe('api', `GET /synthetic${SEP}2xx`, s.api, 'acme');
    record({ kind: 'memory', tenantId: 'acme', ok: true, queueWaitMs: s.wait, processingMs: s.run });
    if (samples.length % 50 === 0) await app.deps.telemetry.flush(); // pipelines of a few thousand commands
  }
  now = realNow;
  await app.deps.telemetry.flush();
}, 60_000);

afterAll(async () => {
  await app.close();
});

const PERIODS = ['30m', '3h', '1d', '7d', '8d', '30d', '60d'];

function reference(from: number, to: number, pick: (s: Sample) => number) {
  const inside = samples.filter((s) => s.at >= from && s.at < to).map(pick);
  inside.sort((a, b) => a - b);
  return {
    n: inside.length,
    avg: Math.round((inside.reduce((a, b) => a + b, 0) / inside.length) * 10) / 10,
    p50: percentile(inside, 50),
    p95: percentile(inside, 95),
    p99: percentile(inside, 99),
  };
}

it('answers every period length with the percentiles of exactly its samples (/stats/api)', async () => {
  const token = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
  const seen = new Set<number>();
  for (const period of PERIODS) {
    const res = await app.request('GET', `/stats/api?period=${period}&endpoint=/synthetic`, { token });
    expect(res.status).toBe(200);
    const from = Date.parse(String(res.body.data.from));
    const to = Date.parse(String(res.body.data.to));
    const ref = reference(from, to, (s) => s.api);
    seen.add(ref.n);
    const [endpoint] = res.body.data.endpoints as { requests: number; latency_ms: Record<string, number> }[];
    expect({ period, requests: endpoint!.requests, ...endpoint!.latency_ms }).toEqual({
      period,
      requests: ref.n,
      avg: ref.avg,
      p50: ref.p50,
      p95: ref.p95,
      p99: ref.p99,
    });
  }
  // The windows differ (minutes, hours and days answer them), and hold different samples.
  expect(seen.size).toBe(PERIODS.length);
});

it('answers every period length with the percentiles of exactly its samples (/stats/performance)', async () => {
  const token = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
  for (const period of PERIODS) {
    const res = await app.request('GET', `/stats/performance?period=${period}`, { token });
    expect(res.status).toBe(200);
    const from = Date.parse(String(res.body.data.from));
    const to = Date.parse(String(res.body.data.to));
    const wait = reference(from, to, (s) => s.wait);
    const run = reference(from, to, (s) => s.run);
    const memory = (res.body.data.kinds as { kind: string }[]).find((k) => k.kind === 'memory');
    expect({ period, ...memory }).toMatchObject({
      period,
      jobs: run.n,
      queue_wait_ms: { p50: wait.p50, p95: wait.p95, p99: wait.p99 },
      processing_ms: { p50: run.p50, p95: run.p95, p99: run.p99 },
    });
  }
});
