import type { WorkerPool } from '../../src/workers/workerPool';
import { createTenants } from '../support/fixtures';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

/**
 * Queue depths (`/monitor/status`, `/metrics`) cover the tenants whose only jobs left are failed
 * ones: the dispatcher lists them in the kind's failed set when a job fails for good, although
 * they leave the active set, and takes them out once a settle finds no failed job.
 */

let app: TestApp;
let pool: WorkerPool | undefined;
const stub = new OpenAiStub();
const METRICS_TOKEN = 'queue-depths-metrics-token-0123456789';

beforeAll(async () => {
  await stub.start();
  stub.on('stub-fail', { kind: 'error', status: 400, message: 'bad request' });
  app = await startTestApp({ env: { METRICS_TOKEN } });
  await createTenants(app, ['acme', 'globex']);
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'f', 'Fay', $1)`,
    [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['stub-fail'] } })],
  );
  pool = await startTestPool(app, { concurrency: 2 });
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await app.close();
  await stub.close();
});

async function status() {
  const admin = await app.tokenFor({ role: 'platform_admin' });
  const res = await app.request('GET', '/monitor/status', { token: admin });
  expect(res.status).toBe(200);
  return res.body.data.queues as Record<'waiting' | 'active' | 'failed' | 'delayed', number>;
}

async function failedGauge(): Promise<number> {
  const res = await fetch(`${app.url}/api/v1/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  const text = await res.text();
  const m = /^maihive_queue_jobs\{kind="heartflow",state="failed"\} (\d+)$/m.exec(text);
  return Number(m?.[1]);
}

it('counts the failed jobs of a tenant that left the active set, and forgets them once retried', async () => {
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  const sent = await app.request('POST', '/chat/send?wait=15000', {
    token,
    body: { message: '@Fay 你好', chat_stream_id: 'f1', platform: 'qq', agent_id: 'f' },
  });
  expect(sent.body.data.status).toBe('failed');
  const jobId = String(sent.body.data.message_id);
  const heartflowActive = app.deps.keys.activeTenants('heartflow');
  const heartflowFailed = app.deps.keys.failedTenants('heartflow');
  // The job fails for good; the settle after it takes the tenant out of the active set.
  await waitFor(async () =>
    (await app.deps.queues.queue('acme', 'heartflow').getFailedCount()) === 1 &&
    (await app.deps.redis.sismember(heartflowActive, 'acme')) === 0 &&
    (await app.deps.redis.sismember(heartflowFailed, 'acme')) === 1
      ? true
      : undefined,
  );
  expect(await app.deps.redis.smembers(heartflowFailed)).toEqual(['acme']);
  expect(await status()).toMatchObject({ failed: 1, waiting: 0, active: 0 });
  expect(await failedGauge()).toBe(1);

  // Retried with a model that answers: the job completes, the settle finds no failed job left.
  stub.on('stub-fail', {
    kind: 'success',
    content: '好的',
    usage: { prompt_tokens: 1, completion_tokens: 1 },
  });
  const operator = await app.tokenFor({ role: 'operator', tenantId: 'acme' });
  const retried = await app.request('POST', `/admin/queues/acme/jobs/${jobId}/retry`, { token: operator });
  expect(retried.status).toBe(200);
  await waitFor(async () =>
    (await app.deps.queues.queue('acme', 'heartflow').getFailedCount()) === 0 &&
    (await app.deps.redis.sismember(heartflowFailed, 'acme')) === 0
      ? true
      : undefined,
  );
  expect(await status()).toMatchObject({ failed: 0 });
  expect(await failedGauge()).toBe(0);
});
