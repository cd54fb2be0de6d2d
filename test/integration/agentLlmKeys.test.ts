import { Writable } from 'node:stream';

import { agentsWithSecretsForUpdate } from '../../src/db/repositories/agents';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { sealStoredAgentKeys } from '../../src/llm/agentKeys';
import { SecretBox } from '../../src/llm/secretBox';
import { createLogger } from '../../src/logger';
import type { WorkerPool } from '../../src/workers/workerPool';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, TEST_SECRET_KEY, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

let app: TestApp;
let pool: WorkerPool | undefined;
let token: string;
const stub = new OpenAiStub();
const API_KEY = 'sk-acme-live-0123456789abcd';
const OTHER_SERVER_KEY = 'another-server-key-that-is-32-bytes-or-more';

async function startPool(secretBox: SecretBox, logger = app.t.logger): Promise<WorkerPool> {
  pool = await startTestPool(app, { logger, secretBox });
  return pool;
}

/** The start-up sealing pass over this file's database. */
function seal(box: SecretBox, verify: boolean, logger = app.t.logger) {
  return sealStoredAgentKeys({ db: app.deps.db, box, logger, verify });
}

/** A logger whose lines (parsed) land in `lines`. */
function capturingLogger() {
  const lines: { level: number; msg: string; tenant_id?: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as (typeof lines)[number]);
      }
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

/** The replyer's requests (memory jobs, run for a sample of batches, may call the model too). */
function replyerRequests() {
  return stub.requests.filter((r) => {
    const first = (r.body.messages as { content: string }[])[0]?.content ?? '';
    return !first.startsWith('You extract') && !first.startsWith('Summarise');
  });
}

let streamNo = 0;
function sendMention() {
  streamNo += 1;
  return app.request('POST', '/chat/send?wait=10000', {
    token,
    body: { message: '@麦麦 在吗？', chat_stream_id: `keys-${streamNo}`, platform: 'qq' },
  });
}

async function storedConfig(agentId = 'default'): Promise<{ llm?: Record<string, unknown> }> {
  const { rows } = await app.t.admin<{ config: { llm?: Record<string, unknown> } }>(
    `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = $1`,
    [agentId],
  );
  return rows[0]!.config;
}

function llmConfig(over: Record<string, unknown> = {}) {
  return { provider: 'openai', base_url: stub.baseUrl, models: ['m-keys'], api_key: API_KEY, ...over };
}

beforeAll(async () => {
  await stub.start();
  app = await startTestApp();
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings)
     VALUES ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}')`,
  );
  await app.t.admin(`UPDATE agents SET name = '麦麦' WHERE tenant_id = 'acme' AND agent_id = 'default'`);
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
});

afterAll(async () => {
  await pool?.close();
  await app.close();
  await stub.close();
});

beforeEach(async () => {
  stub.reset();
  stub.on('m-keys', { kind: 'success', content: '在的', usage: { prompt_tokens: 12, completion_tokens: 3 } });
  const res = await app.request('PUT', '/agents/default/config', { token, body: { llm: llmConfig() } });
  if (res.status !== 200) throw new Error(`agent config not stored: ${res.status}`);
});

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('agent LLM API keys at rest', () => {
  it('stores the key only sealed (AES-256-GCM, versioned), never in plaintext', async () => {
    const config = await storedConfig();
    expect(JSON.stringify(config)).not.toContain(API_KEY);
    expect(JSON.stringify(config)).not.toContain('0123456789abcd');
    expect(config.llm?.api_key).toBeUndefined();
    expect(config.llm?.api_key_encrypted).toMatch(/^v1:[\w-]+:[\w-]+:[\w-]+$/);
    expect(app.secretBox.decrypt(String(config.llm?.api_key_encrypted))).toBe(API_KEY);
    // Sealing the same key twice gives different texts (fresh IV): equal keys are not revealed.
    await app.request('PUT', '/agents/default/config', { token, body: { llm: llmConfig() } });
    expect((await storedConfig()).llm?.api_key_encrypted).not.toBe(config.llm?.api_key_encrypted);
  });

  it('never returns the key, nor its ciphertext, from any agent endpoint', async () => {
    const sealed = String((await storedConfig()).llm?.api_key_encrypted);
    const created = await app.request('POST', '/agents', {
      token,
      body: { agent_id: 'second', name: 'Second', config: { llm: llmConfig() } },
    });
    expect(created.status).toBe(201);
    const responses = [
      created,
      await app.request('GET', '/agents/default', { token }),
      await app.request('GET', '/agents/default/config', { token }),
      await app.request('GET', '/agents', { token }),
      await app.request('PUT', '/agents/default', { token, body: { config: { llm: llmConfig() } } }),
      await app.request('PUT', '/agents/default/config', { token, body: { persona: 'calm' } }),
    ];
    for (const res of responses) {
      const text = JSON.stringify(res.body);
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain('api_key_encrypted');
      expect(text).not.toContain(sealed.split(':')[3]!);
    }
    const read = await app.request('GET', '/agents/default/config', { token });
    expect(read.body.data.config).toMatchObject({ llm: { api_key: '***', models: ['m-keys'] } });
  });

  it('opens the key in the worker only, calling the model with Authorization: Bearer <key>', async () => {
    await startPool(app.secretBox);
    const res = await sendMention();
    expect(res.body.data).toMatchObject({ status: 'replied', response: '在的' });
    expect(replyerRequests()).toHaveLength(1);
    expect(replyerRequests()[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('fails the message loudly when the server key cannot open the stored key, calling nothing', async () => {
    const { logger, lines } = capturingLogger();
    await startPool(SecretBox.fromSecret(OTHER_SERVER_KEY), logger);
    const res = await sendMention();
    expect(res.body.data.status).toBe('failed');
    expect(res.body.data.error).toMatch(/cannot be opened with MAIHIVE_SECRET_KEY/);
    expect(stub.requests).toHaveLength(0);
    const logged = lines.find((l) => l.level >= 50 && /MAIHIVE_SECRET_KEY/.test(l.msg));
    expect(logged).toMatchObject({ tenant_id: 'acme' });
    expect(JSON.stringify(lines)).not.toContain(API_KEY);
  });
});

describe('keys stored in plaintext before keys were sealed', () => {
  async function storePlaintextKey(): Promise<void> {
    await app.t.admin(
      `UPDATE agents SET config = jsonb_build_object('llm', $1::jsonb)
       WHERE tenant_id = 'acme' AND agent_id = 'default'`,
      [JSON.stringify(llmConfig())],
    );
  }

  it('are left alone by a pass stopped before it starts (shutdown during start-up)', async () => {
    await storePlaintextKey();
    const stopped = new AbortController();
    stopped.abort();
    const result = await sealStoredAgentKeys({
      db: app.deps.db,
      box: app.secretBox,
      logger: app.t.logger,
      verify: true,
      signal: stopped.signal,
    });
    expect(result).toEqual({ sealed: 0, resealed: 0, unreadable: [] });
    expect((await storedConfig()).llm?.api_key).toBe(API_KEY);
  });

  it('still work in the worker until sealed', async () => {
    await storePlaintextKey();
    await startPool(app.secretBox);
    const res = await sendMention();
    expect(res.body.data.status).toBe('replied');
    expect(replyerRequests()[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('are sealed by the start-up step, once, and keep working; reads mask them meanwhile', async () => {
    await storePlaintextKey();
    const masked = await app.request('GET', '/agents/default/config', { token });
    expect(JSON.stringify(masked.body)).not.toContain(API_KEY);

    const first = await seal(app.secretBox, false);
    expect(first).toEqual({ sealed: 1, resealed: 0, unreadable: [] });
    const config = await storedConfig();
    expect(JSON.stringify(config)).not.toContain(API_KEY);
    expect(app.secretBox.decrypt(String(config.llm?.api_key_encrypted))).toBe(API_KEY);
    const again = await seal(app.secretBox, true);
    expect(again).toEqual({ sealed: 0, resealed: 0, unreadable: [] });

    await startPool(app.secretBox);
    const res = await sendMention();
    expect(res.body.data.status).toBe('replied');
    expect(replyerRequests()[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });
});

describe('server key rotation', () => {
  it('re-seals keys under the new server key when the old one is given as previous', async () => {
    const rotated = SecretBox.fromSecret(OTHER_SERVER_KEY, [
      'test-server-key-that-is-at-least-32-bytes', // the test app's MAIHIVE_SECRET_KEY
    ]);
    const keyed = await app.t.admin(`SELECT 1 FROM agents WHERE config->'llm' ? 'api_key_encrypted'`);
    const result = await seal(rotated, true);
    expect(result).toEqual({ sealed: 0, resealed: keyed.rowCount, unreadable: [] });
    const sealed = String((await storedConfig()).llm?.api_key_encrypted);
    expect(SecretBox.fromSecret(OTHER_SERVER_KEY).decrypt(sealed)).toBe(API_KEY);
    expect(() => app.secretBox.decrypt(sealed)).toThrow(/failed authentication/);

    await startPool(SecretBox.fromSecret(OTHER_SERVER_KEY));
    const res = await sendMention();
    expect(res.body.data.status).toBe('replied');
    expect(replyerRequests()[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('reports, at start-up, keys that no configured server key opens', async () => {
    const { logger, lines } = capturingLogger();
    const result = await sealStoredAgentKeys({
      db: app.deps.db,
      box: SecretBox.fromSecret(OTHER_SERVER_KEY),
      logger,
      verify: true,
    });
    expect(result.unreadable).toEqual([{ tenant_id: 'acme', agent_id: 'default' }]);
    expect(lines.some((l) => l.level >= 50 && /cannot be opened/.test(l.msg))).toBe(true);
    // The unreadable key is left as it was, for the right server key to open later.
    const rows = await app.deps.db.withTenant(createIsolationContext({ tenantId: 'acme' }), (db) =>
      agentsWithSecretsForUpdate(db, { plaintextOnly: false }),
    );
    const sealed = (rows.find((r) => r.agent_id === 'default')?.config.llm as Record<string, string>)
      .api_key_encrypted!;
    expect(app.secretBox.decrypt(sealed)).toBe(API_KEY);
  });
});

describe('webhook secrets at rest', () => {
  const LEGACY = 'whsec-legacy-0123456789';

  async function hookedConfig(): Promise<{ delivery?: Record<string, string> }> {
    const { rows } = await app.t.admin<{ config: { delivery?: Record<string, string> } }>(
      `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'hooked'`,
    );
    return rows[0]!.config;
  }

  it('seals one stored in plaintext at start-up, re-seals it on rotation, reports one no key opens', async () => {
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'hooked', 'Hooked', $1)`,
      [JSON.stringify({ delivery: { webhook_url: 'https://hooks.example/h', webhook_secret: LEGACY } })],
    );
    const masked = await app.request('GET', '/agents/hooked/config', { token });
    expect(masked.body.data).toMatchObject({ config: { delivery: { webhook_secret: '***' } } });
    expect(JSON.stringify(masked.body)).not.toContain(LEGACY);

    const first = await seal(app.secretBox, false);
    expect(first).toEqual({ sealed: 1, resealed: 0, unreadable: [] });
    const sealed = await hookedConfig();
    expect(JSON.stringify(sealed)).not.toContain(LEGACY);
    expect(sealed.delivery?.webhook_secret).toBeUndefined();
    expect(app.secretBox.decrypt(sealed.delivery!.webhook_secret_encrypted!)).toBe(LEGACY);

    const rotated = SecretBox.fromSecret(OTHER_SERVER_KEY, [TEST_SECRET_KEY]);
    const second = await seal(rotated, true);
    // The default agent's LLM key and hooked's webhook secret.
    expect(second).toEqual({ sealed: 0, resealed: 2, unreadable: [] });
    const resealed = (await hookedConfig()).delivery!.webhook_secret_encrypted!;
    expect(SecretBox.fromSecret(OTHER_SERVER_KEY).decrypt(resealed)).toBe(LEGACY);

    const lost = await seal(SecretBox.fromSecret('a-third-server-key-that-nobody-configured'), true);
    expect(lost.unreadable).toContainEqual({ tenant_id: 'acme', agent_id: 'hooked' });
    expect((await hookedConfig()).delivery!.webhook_secret_encrypted).toBe(resealed);
  });
});
