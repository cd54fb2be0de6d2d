import type { WorkerPool } from '../../src/workers/workerPool';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

/** The heartflow's reply prompt gets its memories from the memory search users search with. */
let app: TestApp;
let pool: WorkerPool | undefined;
let token: string;
const stub = new OpenAiStub();

beforeAll(async () => {
  await stub.start();
  app = await startTestApp();
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings) VALUES ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}')`,
  );
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'mem', 'Mem', $1)`,
    [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['mem-model'] } })],
  );
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  for (const id of ['mem-x', 'mem-y']) {
    await app.request('POST', '/chat/streams', {
      token,
      body: { chat_stream_id: id, platform: 'qq', chat_type: 'group', agent_id: 'mem' },
    });
  }
  pool = await startTestPool(app, { concurrency: 2 });
});

afterAll(async () => {
  await pool?.close();
  await app.close();
  await stub.close();
});

async function store(body: Record<string, unknown>): Promise<void> {
  const res = await app.request('POST', '/memory/store', { token, body: { memory_type: 'fact', ...body } });
  expect(res.status).toBe(201);
}

function systemPromptOf(request: { body: Record<string, unknown> }): string {
  const messages = request.body.messages as { role: string; content: string }[];
  return messages.find((m) => m.role === 'system')?.content ?? '';
}

describe('memories in reply prompts', () => {
  it("puts the stream's relevant memories in the prompt, never another stream's chat memories", async () => {
    stub.on('mem-model', { kind: 'success', content: '记得的' });
    await store({ content: '小红的生日是三月五号', chat_stream_id: 'mem-x', importance: 0.9 });
    await store({ content: '小红的生日是十月一号', chat_stream_id: 'mem-y', importance: 0.3 });
    await store({ content: '小红喜欢吃草莓蛋糕', agent_id: 'mem', scope: 'agent' });
    await store({ content: 'QQ群里大家都叫小红为红红', agent_id: 'mem', scope: 'platform', platform: 'qq' });
    await store({ content: '周末的天气预报是晴天', agent_id: 'mem', scope: 'agent' });
    const res = await app.request('POST', '/chat/send?wait=15000', {
      token,
      body: { message: '@Mem 小红的生日是哪天？', chat_stream_id: 'mem-y', platform: 'qq', agent_id: 'mem' },
    });
    expect(res.body.data).toMatchObject({ status: 'replied', response: '记得的' });
    const prompt = systemPromptOf(stub.requestsFor('mem-model').at(-1)!);
    expect(prompt).toContain('小红的生日是十月一号');
    expect(prompt).toContain('小红喜欢吃草莓蛋糕');
    expect(prompt).toContain('红红');
    expect(prompt).not.toContain('三月五号');
    // Not related to the message: the search does not find it.
    expect(prompt).not.toContain('天气预报');
    // Put into a prompt counts as an access.
    const { rows } = await app.t.admin<{ content: string; access_count: number }>(
      `SELECT content, access_count FROM memory_chest WHERE tenant_id = 'acme' ORDER BY content`,
    );
    expect(rows.find((r) => r.content === '小红的生日是十月一号')?.access_count).toBe(1);
    expect(rows.find((r) => r.content === '小红的生日是三月五号')?.access_count).toBe(0);
  });
});
