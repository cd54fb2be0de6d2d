import { randomBytes } from 'node:crypto';

import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import { createTenant } from '../../src/db/repositories/tenants';
import { jobTelemetry, llmTelemetry } from '../../src/workers/workerTelemetry';
import { heartflowJobData } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';

const METRICS_TOKEN = 'scrape-token-0123456789abcdef';

let app: TestApp;
let admin: string;

beforeAll(async () => {
  app = await startTestApp({ env: { METRICS_TOKEN, METRICS_TENANT_ALLOWLIST: 'watched' } });
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId: 'watched', name: 'watched' }));
  admin = await app.tokenFor({ role: 'platform_admin' });
});
afterAll(async () => {
  await app.close();
});

async function newTenant() {
  const tenantId = `m-${randomBytes(4).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId }));
  return tenantId;
}

/** The value of one sample line, e.g. `name{a="b"} 3`, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find(
      (l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function scrape(headers: Record<string, string>) {
  const res = await fetch(`${app.url}/api/v1/metrics`, { headers });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

describe('GET /system/info', () => {
  it('describes the installation to any authenticated caller, counting tenants in the database', async () => {
    const tenantId = await newTenant();
    const { rows } = await app.t.admin<{ n: string }>('SELECT count(*) AS n FROM tenants');
    const reader = await app.tokenFor({ role: 'reader', tenantId });
    for (const token of [admin, reader]) {
      const res = await app.request('GET', '/system/info', { token });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({
        version: app.deps.version,
        multi_tenant_enabled: true,
        supported_platforms: ['qq', 'discord', 'telegram', 'wechat', 'default'],
        max_tenants: null,
        current_tenants: Number(rows[0]?.n),
      });
    }
    await newTenant();
    const after = await app.request('GET', '/system/info', { token: reader });
    expect(after.body.data.current_tenants).toBe(Number(rows[0]?.n) + 1);
  });

  it('needs credentials', async () => {
    const res = await app.request('GET', '/system/info');
    expect(res.status).toBe(401);
    expect(res.body.error?.code).toBe('UNAUTHORIZED');
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text to the METRICS_TOKEN bearer: process, HTTP and queue metrics', async () => {
    const tenantId = await newTenant();
    await app.deps.queues.enqueueHeartflow(heartflowJobData(tenantId, 'msg_m1'));
    await app.deps.queues.enqueueHeartflow(heartflowJobData(tenantId, 'msg_m2'));
    await app.deps.queues.enqueueHeartflow(heartflowJobData('watched', 'msg_w1'));
    await app.request('GET', '/health');
    await app.request('GET', '/no/such/route');

    const res = await scrape({ authorization: `Bearer ${METRICS_TOKEN}` });
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    expect(res.text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(res.text).toContain('nodejs_eventloop_lag_seconds');
    expect(res.text).toContain(`maihive_build_info{version="${app.deps.version}"} 1`);
    expect(
      sample(res.text, 'maihive_http_requests_total', {
        method: 'GET',
        route: '/health',
        status_class: '2xx',
      }),
    ).toBeGreaterThanOrEqual(1);
    // Unknown URLs share one label instead of growing the series with every path tried.
    expect(
      sample(res.text, 'maihive_http_requests_total', { route: 'unmatched', status_class: '4xx' }),
    ).toBeGreaterThanOrEqual(1);
    expect(res.text).not.toContain('/no/such/route');
    // Errors raised in a route keep its pattern (the 401 of the /system/info test above).
    expect(
      sample(res.text, 'maihive_http_requests_total', { route: '/system/info', status_class: '4xx' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(res.text, 'maihive_http_request_duration_seconds_count', {
        route: '/health',
        status_class: '2xx',
      }),
    ).toBeGreaterThanOrEqual(1);
    // Queue depths by kind and state, summed over tenants: no tenant is a label...
    expect(sample(res.text, 'maihive_queue_jobs', { kind: 'heartflow', state: 'waiting' })).toBe(3);
    expect(sample(res.text, 'maihive_queue_jobs', { kind: 'heartflow', state: 'failed' })).toBe(0);
    expect(res.text).not.toContain(tenantId);
    // ...except those of METRICS_TENANT_ALLOWLIST, in series of their own.
    expect(
      sample(res.text, 'maihive_tenant_queue_jobs', {
        tenant_id: 'watched',
        kind: 'heartflow',
        state: 'waiting',
      }),
    ).toBe(1);
    expect(res.text).toMatch(/^maihive_queue_metrics_up 1$/m);
    expect(res.text).toMatch(/^maihive_queue_tenants_active\{kind="heartflow"\} [1-9]\d*$/m);
    expect(res.text).toMatch(/^maihive_db_pool_connections\{state="idle"\} \d+$/m);
  });

  it('drops tenants that left the active sets from the queue depths', async () => {
    const before = await scrape({ authorization: `Bearer ${METRICS_TOKEN}` });
    const waiting = sample(before.text, 'maihive_queue_jobs', { kind: 'heartflow', state: 'waiting' })!;
    const tenantId = await newTenant();
    await app.deps.queues.enqueueHeartflow(heartflowJobData(tenantId, 'msg_gone'));
    const during = await scrape({ authorization: `Bearer ${METRICS_TOKEN}` });
    expect(sample(during.text, 'maihive_queue_jobs', { kind: 'heartflow', state: 'waiting' })).toBe(
      waiting + 1,
    );
    await app.deps.redis.srem(app.deps.keys.activeTenants('heartflow'), tenantId);
    const after = await scrape({ authorization: `Bearer ${METRICS_TOKEN}` });
    expect(sample(after.text, 'maihive_queue_jobs', { kind: 'heartflow', state: 'waiting' })).toBe(waiting);
  });

  it('reads back with an independent exposition-format parser, job and LLM series of all workers included', async () => {
    // What worker processes report (through Redis), for 30 tenants and 3 models.
    const job = jobTelemetry(app.deps.telemetry);
    const llm = llmTelemetry(app.deps.telemetry);
    const runs = [3, 7, 7, 40, 120, 480, 2600];
    for (let i = 0; i < 30; i++) {
      for (const ms of runs)
        job({ kind: 'heartflow', tenantId: `t${i}`, ok: true, queueWaitMs: 2, processingMs: ms });
      llm({
        tenantId: `t${i}`,
        provider: 'openai',
        modelName: `model-${i % 3}`,
        requestType: 'replyer',
        promptTokens: 10,
        completionTokens: 4,
        cost: 0,
        latencyMs: 100,
        status: 'success',
      });
    }
    job({ kind: 'memory', tenantId: 't0', ok: false, queueWaitMs: 5, processingMs: 9 });
    await app.deps.telemetry.flush();

    const res = await scrape({ authorization: `Bearer ${METRICS_TOKEN}` });
    const families = new Map(parsePrometheusTextFormat(res.text).map((f) => [f.name, f]));
    // The parser reads every family (it throws on a malformed line) and their types; it merges the
    // series of a labelled histogram into one, so their buckets are read from the lines instead.
    expect(families.get('maihive_job_duration_seconds')?.type).toBe('HISTOGRAM');
    const ok = { kind: 'heartflow', outcome: 'ok' };
    const bucket = (le: string) => sample(res.text, 'maihive_job_duration_seconds_bucket', { ...ok, le });
    expect(sample(res.text, 'maihive_job_duration_seconds_count', ok)).toBe(30 * runs.length);
    expect(bucket('0.005')).toBe(30); // the 3 ms runs
    expect(bucket('0.01')).toBe(90); // and the two 7 ms ones
    expect(bucket('0.5')).toBe(180);
    expect(bucket('+Inf')).toBe(210);
    expect(sample(res.text, 'maihive_job_duration_seconds_sum', ok)).toBeCloseTo(
      (30 * runs.reduce((a, b) => a + b, 0)) / 1000,
      6,
    );
    expect(
      sample(res.text, 'maihive_job_duration_seconds_count', { kind: 'memory', outcome: 'failed' }),
    ).toBe(1);
    expect(families.get('maihive_job_queue_wait_seconds')?.type).toBe('HISTOGRAM');

    const requests = families.get('maihive_llm_requests_total');
    expect(requests?.type).toBe('COUNTER');
    expect(requests!.metrics.map((m) => [m.labels?.model, Number(m.value)]).sort()).toEqual([
      ['model-0', 10],
      ['model-1', 10],
      ['model-2', 10],
    ]);
    const tokens = families.get('maihive_llm_tokens_total')!.metrics;
    expect(
      tokens.filter((m) => m.labels?.direction === 'prompt').reduce((n, m) => n + Number(m.value), 0),
    ).toBe(300);
    expect(families.get('maihive_llm_request_duration_seconds')?.type).toBe('HISTOGRAM');

    // Bounded cardinality: 30 tenants reported, and no series names any of them.
    const tenantLabels = [...families.values()].flatMap((f) =>
      f.metrics.flatMap((m) => [m.labels?.tenant, m.labels?.tenant_id].filter((v) => v !== undefined)),
    );
    expect(new Set(tenantLabels)).toEqual(new Set(['watched']));
    for (let i = 0; i < 30; i++) expect(res.text).not.toContain(`"t${i}"`);
  });

  it("serves a platform admin's token too", async () => {
    const res = await scrape({ authorization: `Bearer ${admin}` });
    expect(res.status).toBe(200);
    expect(res.text).toContain('maihive_http_requests_total');
  });

  it('refuses everyone else with the error envelope', async () => {
    const anonymous = await app.request('GET', '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ success: false, error: { code: 'UNAUTHORIZED' } });

    const wrong = await app.request('GET', '/metrics', {
      headers: { authorization: `Bearer ${METRICS_TOKEN}x` },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.code).toBe('UNAUTHORIZED');

    const tenantId = await newTenant();
    for (const role of ['tenant_admin', 'operator', 'reader'] as const) {
      const token = await app.tokenFor({ role, tenantId });
      const res = await app.request('GET', '/metrics', { token });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
  });

  it('refuses a revoked platform admin token', async () => {
    const token = await app.tokenFor({ role: 'platform_admin', sub: 'leaving-admin' });
    const claims = await app.deps.tokens.verifyAccessToken(token);
    await app.deps.redis.set(app.deps.keys.revokedToken(undefined, claims.jti), '1', 'EX', 60);
    const res = await app.request('GET', '/metrics', { token });
    expect(res.status).toBe(401);
  });
});

describe('GET /metrics without METRICS_TOKEN configured', () => {
  let bare: TestApp;
  beforeAll(async () => {
    bare = await startTestApp();
  });
  afterAll(async () => {
    await bare.close();
  });

  it('accepts platform admins only', async () => {
    const bearer = await bare.request('GET', '/metrics', {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(bearer.status).toBe(401);
    const adminToken = await bare.tokenFor({ role: 'platform_admin' });
    const res = await fetch(`${bare.url}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(res.status).toBe(200);
  });
});
