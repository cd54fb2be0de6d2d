import path from 'node:path';

import { PLUGIN_PERMISSIONS } from '../../src/plugins/manifest';
import { created, createTenants } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';
import { waitFor } from '../support/waitFor';

const PLUGIN_DIR = path.join(__dirname, '..', 'fixtures', 'plugins');

let app: TestApp;
let acmeAdmin: string;
let globexAdmin: string;
let acmeReader: string;

beforeAll(async () => {
  app = await startTestApp({ env: { MAIHIVE_PLUGIN_DIR: PLUGIN_DIR } });
  await createTenants(app, ['acme', 'globex']);
  await app.t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform)
     VALUES ('acme', 'g1', 'default', 'qq'), ('globex', 'g1', 'default', 'qq')`,
  );
  acmeAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  globexAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
  acmeReader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
});
afterAll(async () => {
  await app.close();
});

function fieldsOf(res: { body: { error?: { details?: Record<string, unknown> } } }): string[] {
  return ((res.body.error?.details?.fields ?? []) as { path: string }[]).map((f) => f.path);
}

const install = (token: string, body: Record<string, unknown>) =>
  app.request('POST', '/plugins/install', { token, body });
const execute = (token: string, pluginId: string, action: string, parameters: Record<string, unknown> = {}) =>
  app.request('POST', `/plugins/${pluginId}/execute`, { token, body: { action, parameters } });

describe('the catalog', () => {
  it('lists the built-ins and the valid operator plugins; invalid ones are rejected with their problems', async () => {
    const res = await app.request('GET', '/plugins', { token: acmeReader });
    expect(res.status).toBe(200);
    const plugins = res.body.data.plugins as { plugin_id: string; source: string; status: string }[];
    expect(plugins.map((p) => [p.plugin_id, p.source])).toEqual([
      ['dice', 'builtin'],
      ['memory_chest', 'builtin'],
      ['keyword_replies', 'builtin'],
      ['daily_usage', 'builtin'],
      ['faulty', 'operator'],
      ['probe', 'operator'],
    ]);
    expect(plugins.every((p) => p.status === 'not_installed')).toBe(true);
    const rejected = app.deps.plugins.catalog.rejected.map((r) => [
      path.basename(path.dirname(r.modulePath)),
      r.problems,
    ]);
    expect(rejected).toEqual([
      [
        'bad_manifest',
        expect.arrayContaining([
          expect.stringMatching(/^manifest\.version/),
          expect.stringMatching(/^manifest\.permissions/),
        ]),
      ],
      ['taken_id', ['plugin id dice is taken']],
    ]);
    const dice = await app.request('GET', '/plugins?category=fun', { token: acmeReader });
    expect(dice.body.data.plugins).toEqual([
      expect.objectContaining({
        plugin_id: 'dice',
        declared_permissions: ['message_send'],
        components: expect.objectContaining({
          commands: [expect.objectContaining({ name: 'roll' })],
        }) as unknown,
      }),
    ]);
  });
});

describe('install, enable, disable, configure', () => {
  it('refuses unknown plugins, undeclared permissions and config off the schema with the fields (400)', async () => {
    const unknown = await install(acmeAdmin, { plugin_id: 'nope', permissions: [] });
    expect(unknown.status).toBe(400);
    expect(fieldsOf(unknown)).toEqual(['plugin_id']);
    const perms = await install(acmeAdmin, {
      plugin_id: 'dice',
      permissions: ['message_send', 'http', 'root'],
    });
    expect(perms.status).toBe(400);
    expect(fieldsOf(perms)).toEqual(['permissions.1', 'permissions.2']);
    const config = await install(acmeAdmin, {
      plugin_id: 'keyword_replies',
      permissions: ['message_send'],
      config: { rules: [{ keyword: '', reply: 'x' }], extra: 1 },
    });
    expect(config.status).toBe(400);
    expect(fieldsOf(config)).toEqual(expect.arrayContaining(['config.rules.0.keyword', 'config']));
    const shape = await install(acmeAdmin, { plugin_id: 'dice', permissions: 'all', colour: 1 });
    expect(fieldsOf(shape)).toEqual(expect.arrayContaining(['permissions', 'body']));
    expect((await install(acmeReader, { plugin_id: 'dice', permissions: [] })).status).toBe(403);
    expect((await app.request('POST', '/plugins/nope/enable', { token: acmeAdmin })).status).toBe(404);
    // Unknown ids elsewhere, and bodies of the wrong shape: 404 / 400 naming the fields, never 500.
    expect((await app.request('GET', '/plugins/nope/config', { token: acmeAdmin })).status).toBe(404);
    const putUnknown = await app.request('PUT', '/plugins/nope/config', {
      token: acmeAdmin,
      body: { config: {} },
    });
    expect(putUnknown.status).toBe(404);
    expect((await execute(acmeAdmin, 'nope', 'roll')).status).toBe(404);
    const badId = await app.request('POST', '/plugins/install', {
      token: acmeAdmin,
      body: { plugin_id: '../etc', permissions: [] },
    });
    expect(badId.status).toBe(400);
    expect(fieldsOf(badId)).toEqual(['plugin_id']);
    const params = await app.request('POST', '/plugins/dice/execute', {
      token: acmeAdmin,
      body: { action: 'roll', parameters: 'all' },
    });
    expect(params.status).toBe(400);
    expect(fieldsOf(params)).toEqual(['parameters']);
    const configShape = await install(acmeAdmin, { plugin_id: 'dice', permissions: [], config: [1] });
    expect(configShape.status).toBe(400);
    expect(fieldsOf(configShape)).toEqual(['config']);
  });

  it('installs, enables for one tenant only, disables, and validates config updates', async () => {
    const res = await install(acmeAdmin, {
      plugin_id: 'dice',
      permissions: ['message_send'],
      auto_enable: true,
    });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      plugin_id: 'dice',
      status: 'enabled',
      granted_permissions: ['message_send'],
    });
    expect((await install(acmeAdmin, { plugin_id: 'dice', permissions: [] })).status).toBe(409);
    created(await install(globexAdmin, { plugin_id: 'dice', permissions: ['message_send'] }));

    // Enabled in acme, installed but disabled in globex.
    const rolled = await execute(acmeAdmin, 'dice', 'roll', { dice: '3d6+2' });
    expect(rolled.status).toBe(200);
    expect(rolled.body.data).toMatchObject({
      success: true,
      reply: expect.stringMatching(/^🎲 3d6\+2: \d+ \(\d \+ \d \+ \d \+ 2\)$/) as unknown,
    });
    const total = (rolled.body.data.data as { total: number }).total;
    expect(total).toBeGreaterThanOrEqual(5);
    expect(total).toBeLessThanOrEqual(20);
    const refused = await execute(globexAdmin, 'dice', 'roll');
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toBe('plugin is disabled');
    const listed = await app.request('GET', '/plugins?status=enabled', { token: globexAdmin });
    expect(listed.body.data.plugins).toEqual([]);

    expect(
      (await app.request('POST', '/plugins/dice/disable', { token: acmeAdmin })).body.data,
    ).toMatchObject({ status: 'disabled' });
    expect((await execute(acmeAdmin, 'dice', 'roll')).status).toBe(400);
    expect((await app.request('POST', '/plugins/dice/enable', { token: acmeAdmin })).body.data).toMatchObject(
      { status: 'enabled' },
    );
    expect((await execute(acmeAdmin, 'dice', 'roll')).body.data).toMatchObject({ success: true });
    expect((await execute(acmeAdmin, 'dice', 'nope')).status).toBe(400);

    created(
      await install(acmeAdmin, {
        plugin_id: 'keyword_replies',
        permissions: ['message_send'],
        auto_enable: true,
      }),
    );
    const good = { rules: [{ keyword: '早安', reply: '早安呀', chat_stream_ids: ['g1'] }] };
    const put = await app.request('PUT', '/plugins/keyword_replies/config', {
      token: acmeAdmin,
      body: { config: good },
    });
    expect(put.status).toBe(200);
    const got = await app.request('GET', '/plugins/keyword_replies/config', { token: acmeReader });
    expect(got.body.data).toMatchObject({
      config: { rules: [{ keyword: '早安', match: 'contains', chat_stream_ids: ['g1'] }] },
    });
    expect(got.body.data.schema).toMatchObject({ type: 'object' });
    const bad = await app.request('PUT', '/plugins/keyword_replies/config', {
      token: acmeAdmin,
      body: { config: { rules: [{ keyword: 'x', reply: 'y', match: 'regex' }] } },
    });
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad)).toEqual(['config.rules.0.match']);
    expect((await app.request('GET', '/plugins/keyword_replies/config', { token: globexAdmin })).status).toBe(
      404,
    );
  });
});

describe('the PluginAPI', () => {
  beforeAll(async () => {
    created(await install(acmeAdmin, { plugin_id: 'probe', permissions: [], auto_enable: true }));
    created(
      await install(globexAdmin, {
        plugin_id: 'probe',
        permissions: [...PLUGIN_PERMISSIONS],
        auto_enable: true,
      }),
    );
  });

  const METHOD_PERMISSION: [string, string][] = [
    ['message.recent', 'message_read'],
    ['send.text', 'message_send'],
    ['memory.remember', 'memory_write'],
    ['memory.recall', 'memory_read'],
    ['emoji.pick', 'emoji'],
    ['llm.complete', 'llm'],
    ['http.fetch', 'http'],
    ['usage.today', 'usage_read'],
  ];

  it.each(METHOD_PERMISSION)('refuses %s to a plugin not granted %s', async (method, permission) => {
    const res = await execute(acmeAdmin, 'probe', 'probe', { method, chat_stream_id: 'g1' });
    expect(res.status).toBe(200);
    expect(res.body.data.data).toEqual({
      ok: false,
      error: `plugin probe was not granted the ${permission} permission`,
    });
    // Nothing happened on its behalf: no memory stored.
    const { rows } = await app.t.admin(`SELECT 1 FROM memory_chest WHERE tenant_id = 'acme'`);
    expect(rows).toEqual([]);
  });

  it('serves the granted methods inside the tenant, and nothing of the network or environment', async () => {
    const run = async (method: string, arg?: string) =>
      (
        await execute(globexAdmin, 'probe', 'probe', {
          method,
          chat_stream_id: 'g1',
          ...(arg ? { arg } : {}),
        })
      ).body.data.data as { ok: boolean; value?: unknown; error?: string };
    expect(await run('memory.remember', '小明喜欢火锅')).toMatchObject({
      ok: true,
      value: { memory_id: expect.stringMatching(/^mem_/) as unknown },
    });
    expect(await run('memory.recall', '火锅')).toEqual({
      ok: true,
      value: [expect.objectContaining({ content: '小明喜欢火锅' })],
    });
    expect(await run('emoji.pick')).toEqual({ ok: true, value: '😄' });
    expect(await run('usage.today')).toMatchObject({ ok: true, value: { messages_in: 0, llm_requests: 0 } });
    expect(await run('message.recent')).toEqual({ ok: true, value: [] });
    // The API process has no LLM for plugins; loopback (Redis, PostgreSQL) is never reachable.
    expect(await run('llm.complete')).toEqual({
      ok: false,
      error: 'no LLM is available to plugins in this process',
    });
    expect(await run('http.fetch', 'http://127.0.0.1:6379/')).toEqual({
      ok: false,
      error: 'private and loopback hosts are not reachable',
    });
    expect(await run('http.fetch', 'file:///etc/passwd')).toMatchObject({
      ok: false,
      error: expect.stringContaining('bad arguments') as unknown,
    });
    expect(await run('env')).toEqual({ ok: true, value: 0 });
    expect(await run('config')).toEqual({ ok: true, value: { greeting: 'hi' } });
    const sent = await execute(globexAdmin, 'probe', 'probe', { method: 'send.text' });
    expect(sent.body.data).toMatchObject({ success: true, reply: 'sent by probe' });
    const unsent = await execute(acmeAdmin, 'probe', 'probe', { method: 'config' });
    expect(unsent.body.data).toMatchObject({ success: true, reply: null });
  });

  it("keeps each tenant's plugin state to itself", async () => {
    await execute(acmeAdmin, 'probe', 'probe', { method: 'storage.set', arg: 'acme-secret' });
    const acme = await execute(acmeAdmin, 'probe', 'probe', { method: 'storage.get' });
    expect(acme.body.data.data).toEqual({ ok: true, value: 'acme-secret' });
    const globex = await execute(globexAdmin, 'probe', 'probe', { method: 'storage.get' });
    expect(globex.body.data.data).toEqual({ ok: true, value: null });
    const { rows } = await app.t.admin(`SELECT tenant_id, value FROM plugin_state ORDER BY tenant_id`);
    expect(rows).toEqual([{ tenant_id: 'acme', value: 'acme-secret' }]);
  });

  it('answers within the budget whatever the plugin does: throwing, hanging, spinning, killing its thread', async () => {
    created(
      await install(acmeAdmin, { plugin_id: 'faulty', permissions: ['message_send'], auto_enable: true }),
    );
    const outcome = async (action: string) => {
      const started = Date.now();
      const res = await execute(acmeAdmin, 'faulty', action);
      expect(res.status).toBe(200);
      return {
        ...(res.body.data as { success: boolean; error: { reason: string } | null }),
        ms: Date.now() - started,
      };
    };
    // The sandbox thread started with the app; wait until it has loaded the modules.
    await waitFor(async () => ((await outcome('ok')).success ? true : undefined));
    expect(await outcome('throw')).toMatchObject({
      success: false,
      error: { reason: 'error', message: 'boom' },
    });
    const hang = await outcome('hang');
    expect(hang).toMatchObject({ success: false, error: { reason: 'timeout' } });
    const starts = app.deps.plugins.sandbox.starts;
    const spin = await outcome('spin');
    expect(spin).toMatchObject({ success: false, error: { reason: 'timeout' } });
    // 300 ms budget; generous bounds for a shared machine.
    expect(spin.ms).toBeLessThan(5000);
    expect(await outcome('exit')).toMatchObject({ success: false });
    // The sandbox restarted and serves again (once the new thread has started).
    await waitFor(async () => ((await outcome('ok')).success ? true : undefined));
    expect(app.deps.plugins.sandbox.starts).toBeGreaterThan(starts);
  });
});

describe('the built-in plugins', () => {
  beforeAll(async () => {
    // The sandbox thread may still be restarting after the faulty plugin's tests.
    await waitFor(async () =>
      (await execute(acmeAdmin, 'dice', 'roll')).body.data.success === true ? true : undefined,
    );
  });

  it('remember and recall on the memory chest of the chat', async () => {
    created(
      await install(acmeAdmin, {
        plugin_id: 'memory_chest',
        permissions: ['memory_read', 'memory_write', 'message_send'],
        auto_enable: true,
      }),
    );
    const remembered = await execute(acmeAdmin, 'memory_chest', 'remember', {
      text: '周五下午开会',
      chat_stream_id: 'g1',
    });
    expect(remembered.body.data).toMatchObject({ success: true, reply: '记住了：周五下午开会' });
    const recalled = await execute(acmeAdmin, 'memory_chest', 'recall', {
      query: '开会',
      chat_stream_id: 'g1',
    });
    expect(recalled.body.data).toMatchObject({ success: true, reply: '1. 周五下午开会' });
    const { rows } = await app.t.admin(
      `SELECT scope, chat_stream_id, metadata FROM memory_chest WHERE tenant_id = 'acme'`,
    );
    expect(rows).toEqual([
      { scope: 'chat', chat_stream_id: 'g1', metadata: { source: 'plugin', plugin_id: 'memory_chest' } },
    ]);
    const none = await execute(acmeAdmin, 'memory_chest', 'recall', { query: '火锅', chat_stream_id: 'g1' });
    expect(none.body.data).toMatchObject({ reply: '没有找到相关的记忆' });
  });

  it("tells today's usage to the tenant's admins only", async () => {
    created(
      await install(acmeAdmin, {
        plugin_id: 'daily_usage',
        permissions: ['usage_read', 'message_send'],
        auto_enable: true,
        config: { admin_user_ids: ['10001'] },
      }),
    );
    const res = await execute(acmeAdmin, 'daily_usage', 'usage');
    expect(res.body.data).toMatchObject({ success: true, reply: '只有管理员可以查看用量' });
  });
});
