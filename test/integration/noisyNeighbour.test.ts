/**
 * The core promise, end to end, in one process composed as `npm start` runs it (`startRuntime`,
 * role `all`: the API and the workers together, over HTTP): while one tenant's flood waits in
 * its queue, a quiet tenant's message is answered. Order-based, not timed: the quiet tenant is
 * answered while most of the flood is still unanswered, which a first-come-first-served system
 * could not do (it would answer the flood's 2,000 messages first).
 */
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';

const FLOOD = 2000;

let h: RuntimeHarness;

beforeAll(async () => {
  h = await startRuntimeHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a quiet tenant next to a flood, in one npm-start process', () => {
  it('is answered while most of the flood is still waiting', async () => {
    const bearer = await h.adminBearer();
    // The flood may send as fast as it likes: only the scheduler stands between it and the quiet tenant.
    const noisyKey = await h.tenantWithKey('noisy', {
      rate_limit_per_second: 1_000_000,
      credential_rate_limit_per_second: 1_000_000,
    });
    const quietKey = await h.tenantWithKey('quiet');

    // The whole flood is queued before any of it runs, then let loose.
    expect((await h.call('POST', '/admin/queues/noisy/pause', { bearer })).status).toBe(200);
    for (let b = 0; b < FLOOD / 100; b++) {
      const messages = Array.from({ length: 100 }, (_, i) => ({
        message: `@麦麦 刷屏 ${b}-${i}`,
        chat_stream_id: `flood-${i % 20}`,
        platform: 'qq',
      }));
      const batch = await h.call('POST', '/chat/send/batch', { apiKey: noisyKey, body: { messages } });
      const results = batch.data.results as { success: boolean }[];
      expect(results.every((r) => r.success)).toBe(true);
    }
    expect((await h.call('POST', '/admin/queues/noisy/resume', { bearer })).status).toBe(200);

    const quiet = await h.call('POST', '/chat/send?wait=20000', {
      apiKey: quietKey,
      body: { message: '@麦麦 今天吃什么', chat_stream_id: 'quiet-1', platform: 'qq' },
    });
    expect(quiet.status).toBe(200);
    expect(quiet.data.status).toBe('replied');

    const { rows } = await h.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages
        WHERE tenant_id = 'noisy' AND direction = 'in' AND status IN ('replied', 'no_reply', 'failed')`,
    );
    expect(rows[0]!.n).toBeLessThan(FLOOD / 2);
  }, 120_000);
});
