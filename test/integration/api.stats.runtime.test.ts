import { percentile } from '../../src/domain/usageBuckets';
import { SEP } from '../../src/telemetry/telemetryRecorder';
import type { WorkerPool } from '../../src/workers/workerPool';
import { jobTelemetry } from '../../src/workers/workerTelemetry';
import { heartflowJobData } from '../support/fixtures';
import { type SecondProcess, startSecondProcess } from '../support/secondProcess';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

/** `/stats/api`, `/stats/performance` and `/monitor/status` across two processes sharing Redis. */

let app: TestApp;
let second: SecondProcess;
let admin: string;

/** Latencies with a known nearest-rank p50/p95/p99 (ms, whole: below 1 s the bins are exact). */
const samples = (n: number, seed: number) => Array.from({ length: n }, (_, i) => ((i * 37 + seed) % 900) + 1);

async function flushAll(): Promise<void> {
  await Promise.all([app.deps.telemetry.flush(), second.composition.deps.telemetry.flush()]);
}

beforeAll(async () => {
  app = await startTestApp();
  second = await startSecondProcess(app, { http: true });
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
  admin = await app.tokenFor({ role: 'platform_admin' });
});
afterAll(async () => {
  await second.close();
  await app.close();
});

describe('GET /stats/api', () => {
  it('counts the requests of every process, per route and status class, per tenant', async () => {
    const acme = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
    const globex = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
    const get = (base: string, path: string, token?: string) =>
      fetch(`${base}/api/v1${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    // acme: 3 OK reads of /tenants/:id on each process, 2 refused ones (403) on the second
    for (let i = 0; i < 3; i++) {
      expect((await get(app.url, '/tenants/acme', acme)).status).toBe(200);
      expect((await get(second.url!, '/tenants/acme', acme)).status).toBe(200);
    }
    for (let i = 0; i < 2; i++) expect((await get(second.url!, '/tenants/globex', acme)).status).toBe(403);
    expect((await get(app.url, '/agents', globex)).status).toBe(200);
    await flushAll();

    const res = await app.request('GET', '/stats/api?period=1h', { token: acme });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ scope: 'tenant', tenant_id: 'acme' });
    const endpoints = res.body.data.endpoints as { endpoint: string; requests: number }[];
    const tenantRoute = endpoints.find((e) => e.endpoint === 'GET /tenants/:tenant_id');
    expect(tenantRoute).toMatchObject({ requests: 8, errors: 0, client_errors: 2, error_rate_percent: 0 });
    // Nothing of globex's in acme's figures.
    expect(endpoints.find((e) => e.endpoint === 'GET /agents')).toBeUndefined();

    const one = await app.request('GET', '/stats/api?period=1h&endpoint=/agents', { token: globex });
    expect(one.body.data.endpoints).toEqual([
      expect.objectContaining({ endpoint: 'GET /agents', requests: 1 }),
    ]);

    // The installation (platform admins) sees both tenants and the anonymous requests too.
    const all = await app.request('GET', '/stats/api?period=1h&endpoint=GET /tenants/:tenant_id', {
      token: admin,
    });
    expect(all.body.data).toMatchObject({ scope: 'installation', tenant_id: null });
    expect((all.body.data.totals as { requests: number }).requests).toBe(8);
  });

  it('reports percentiles of the merged histograms exactly against the samples', async () => {
    const values = samples(500, 3);
    for (const ms of values) app.deps.telemetry.observe('api', `GET /synthetic${SEP}2xx`, ms, 'globex');
    for (const ms of values.slice(0, 20))
      app.deps.telemetry.observe('api', `GET /synthetic${SEP}5xx`, ms, 'globex');
    await flushAll();
    const res = await app.request('GET', '/stats/api?period=2h&endpoint=/synthetic', {
      token: await app.tokenFor({ role: 'reader', tenantId: 'globex' }),
    });
    const all = [...values, ...values.slice(0, 20)];
    expect(res.body.data.endpoints).toEqual([
      {
        endpoint: 'GET /synthetic',
        requests: 520,
        errors: 20,
        client_errors: 0,
        error_rate_percent: Math.round((20 / 520) * 10000) / 100,
        latency_ms: {
          avg: Math.round((all.reduce((a, b) => a + b, 0) / all.length) * 10) / 10,
          p50: percentile(all, 50),
          p95: percentile(all, 95),
          p99: percentile(all, 99),
        },
      },
    ]);
  });

  it("refuses another tenant's figures and validates the query", async () => {
    const acme = await app.tokenFor({ role: 'operator', tenantId: 'acme' });
    const crossing = await app.request('GET', '/stats/api', {
      token: acme,
      headers: { 'X-Tenant-ID': 'globex' },
    });
    expect(crossing.status).toBe(403);
    expect(crossing.body.error?.code).toBe('ISOLATION_VIOLATION');
    for (const q of ['period=91d', 'period=x', 'foo=1']) {
      const res = await app.request('GET', `/stats/api?${q}`, { token: acme });
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    }
  });
});

describe('GET /stats/performance', () => {
  it('gives queue wait and processing percentiles and jobs per second per kind, per tenant', async () => {
    const record = jobTelemetry(app.deps.telemetry);
    const waits = samples(300, 5);
    const runs = samples(300, 11);
    waits.forEach((w, i) =>
      record({ kind: 'memory', tenantId: 'acme', ok: i % 10 !== 0, queueWaitMs: w, processingMs: runs[i]! }),
    );
    record({ kind: 'delivery', tenantId: 'globex', ok: true, queueWaitMs: 1, processingMs: 2 });
    await flushAll();
    const res = await app.request('GET', '/stats/performance?period=1h', {
      token: await app.tokenFor({ role: 'reader', tenantId: 'acme' }),
    });
    expect(res.status).toBe(200);
    const kinds = res.body.data.kinds as { kind: string; jobs: number; jobs_per_second: number }[];
    const memory = kinds.find((k) => k.kind === 'memory');
    expect(memory).toMatchObject({
      jobs: 300,
      failed: 30,
      queue_wait_ms: { p50: percentile(waits, 50), p95: percentile(waits, 95), p99: percentile(waits, 99) },
      processing_ms: { p50: percentile(runs, 50), p95: percentile(runs, 95), p99: percentile(runs, 99) },
    });
    expect(memory!.jobs_per_second).toBeGreaterThan(0);
    expect(kinds.find((k) => k.kind === 'delivery')).toBeUndefined();
  });

  it('records the jobs a worker pool runs', async () => {
    const pool: WorkerPool = await startTestPool(app, { telemetry: { recorder: app.deps.telemetry } });
    try {
      const token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
      const sent = await app.request('POST', '/chat/send?wait=10000', {
        token,
        body: { message: '@麦麦 在吗', chat_stream_id: 'perf', options: { enable_memory: false } },
      });
      expect(sent.body.data.status).toMatch(/replied|no_reply/);
      const heartflow = await waitFor(async () => {
        await flushAll();
        const res = await app.request('GET', '/stats/performance?period=15m', { token });
        const k = (res.body.data.kinds as { kind: string; jobs: number }[]).find(
          (x) => x.kind === 'heartflow',
        );
        return k && k.jobs >= 1 ? k : undefined;
      });
      expect(heartflow).toMatchObject({ kind: 'heartflow', failed: 0 });
    } finally {
      await pool.close();
    }
  });
});

describe('GET /monitor/status', () => {
  it('lists every live process and aggregates them, for platform admins only', async () => {
    await app.deps.queues.enqueueHeartflow(heartflowJobData('acme', 'msg_status_1'));
    await second.composition.deps.processBeat.beat();
    await app.deps.processBeat.beat();
    const res = await app.request('GET', '/monitor/status', { token: admin });
    expect(res.status).toBe(200);
    const d = res.body.data as Record<string, unknown> & {
      processes: { process_id: string; roles: string[] }[];
      queues: Record<string, number>;
      services: Record<string, string>;
      performance: Record<string, number>;
    };
    const ids = d.processes.map((p) => p.process_id);
    expect(ids).toEqual(
      expect.arrayContaining([app.deps.processBeat.processId, second.composition.deps.processBeat.processId]),
    );
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.services).toMatchObject({ database: 'healthy', redis: 'healthy' });
    expect(d.queues.waiting).toBeGreaterThanOrEqual(1);
    expect(d.performance.requests_per_second).toBeGreaterThan(0);
    expect(['healthy', 'degraded']).toContain(d.system_health);
    expect(d.uptime_seconds).toBeGreaterThanOrEqual(0);

    // A process that closes leaves the list at once.
    const third = await startSecondProcess(app, { http: true });
    const thirdId = third.composition.deps.processBeat.processId;
    await third.composition.deps.processBeat.beat();
    const withThird = await app.request('GET', '/monitor/status', { token: admin });
    expect((withThird.body.data.processes as { process_id: string }[]).map((p) => p.process_id)).toContain(
      thirdId,
    );
    await third.close();
    const without = await app.request('GET', '/monitor/status', { token: admin });
    expect((without.body.data.processes as { process_id: string }[]).map((p) => p.process_id)).not.toContain(
      thirdId,
    );

    for (const role of ['tenant_admin', 'operator', 'reader'] as const) {
      const refused = await app.request('GET', '/monitor/status', {
        token: await app.tokenFor({ role, tenantId: 'acme' }),
      });
      expect(refused.status).toBe(403);
    }
  });
});
