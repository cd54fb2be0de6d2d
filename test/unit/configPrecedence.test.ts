import { layersOf } from '../../src/configuration/effectiveConfig';
import {
  applyConfigPatch,
  configJsonSchema,
  configPatchSchema,
  maskConfigValues,
} from '../../src/domain/configuration/categories';
import { deliverySettingsOf } from '../../src/domain/configuration/delivery';
import { memoryWorkerSettingsOf } from '../../src/domain/configuration/memory';
import { resolveCategory } from '../../src/domain/configuration/precedence';

const sealer = { encrypt: (plain: string) => `v1:aXY:dGFn:${Buffer.from(plain).toString('base64url')}` };

describe('configuration precedence (tenant < agent < platform < chat)', () => {
  it('takes each key from the most specific scope that sets it, and says which', () => {
    const resolved = resolveCategory('heartflow', [
      { scope: 'chat', values: { talk_value: 0.9 } },
      { scope: 'tenant', values: { talk_value: 0.1, response_style: 'terse', timezone: 'Asia/Shanghai' } },
      { scope: 'platform', values: { response_style: 'casual', talk_value: 0.3 } },
      { scope: 'agent', values: { mentioned_bot_reply: false, talk_value: 0.2 } },
    ]);
    expect(resolved.values).toMatchObject({
      talk_value: 0.9,
      response_style: 'casual',
      mentioned_bot_reply: false,
      timezone: 'Asia/Shanghai',
      memory_strength: 0.5,
    });
    expect(resolved.sources).toMatchObject({
      talk_value: 'chat',
      response_style: 'platform',
      mentioned_bot_reply: 'agent',
      timezone: 'tenant',
      memory_strength: 'default',
      quiet_hours: 'default',
    });
  });

  it.each([
    ['tenant', 0.1],
    ['agent', 0.2],
    ['platform', 0.3],
    ['chat', 0.4],
  ] as const)('a value set at %s alone is in force, sourced there', (scope, value) => {
    const resolved = resolveCategory('heartflow', [{ scope, values: { talk_value: value } }]);
    expect(resolved.values.talk_value).toBe(value);
    expect(resolved.sources.talk_value).toBe(scope);
  });

  it('skips a stored value that is no longer valid (the less specific one applies)', () => {
    const resolved = resolveCategory('heartflow', [
      { scope: 'tenant', values: { talk_value: 0.2 } },
      { scope: 'chat', values: { talk_value: 7, unknown_key: 1 } },
    ]);
    expect(resolved.values).toMatchObject({ talk_value: 0.2 });
    expect(resolved.values).not.toHaveProperty('unknown_key');
    expect(resolved.sources.talk_value).toBe('tenant');
  });

  it('a secret set at a more specific scope replaces the inherited one in both forms', () => {
    const resolved = resolveCategory('llm', [
      { scope: 'tenant', values: { api_key_encrypted: 'v1:a:b:c', base_url: 'https://t.example' } },
      { scope: 'agent', values: { api_key: 'plain-old-row' } },
    ]);
    expect(resolved.values).toMatchObject({ api_key: 'plain-old-row', base_url: 'https://t.example' });
    expect(resolved.values).not.toHaveProperty('api_key_encrypted');
    expect(resolved.sources).toMatchObject({ api_key: 'agent', base_url: 'tenant' });
  });

  it('picks the layers of one chat out of a tenant snapshot: other agents, platforms and chats do not apply', () => {
    const entry = (scope: 'tenant' | 'agent' | 'platform' | 'chat', id: string | null, talk: number) => ({
      category: 'heartflow',
      scope,
      agent_id: scope === 'agent' ? id : null,
      platform: scope === 'platform' ? id : null,
      chat_stream_id: scope === 'chat' ? id : null,
      config: { talk_value: talk },
      version: 1,
    });
    const rows = {
      entries: [
        entry('tenant', null, 0.1),
        entry('agent', 'b1', 0.2),
        entry('platform', 'qq', 0.3),
        entry('chat', 'c2', 0.4),
      ],
      agents: [{ agent_id: 'b1', config: { llm: { provider: 'openai', base_url: 'https://x.example' } } }],
    };
    const at = (ctx: { agentId?: string; platform?: string; chatStreamId?: string }) =>
      resolveCategory('heartflow', layersOf('heartflow', rows, {}, { tenantId: 't', ...ctx }));
    expect(at({ agentId: 'b2', platform: 'discord', chatStreamId: 'c1' }).sources.talk_value).toBe('tenant');
    expect(at({ agentId: 'b1', platform: 'discord', chatStreamId: 'c1' }).sources.talk_value).toBe('agent');
    expect(at({ agentId: 'b1', platform: 'qq', chatStreamId: 'c1' }).values.talk_value).toBe(0.3);
    expect(at({ agentId: 'b1', platform: 'qq', chatStreamId: 'c2' }).values.talk_value).toBe(0.4);
    const llm = resolveCategory('llm', layersOf('llm', rows, {}, { tenantId: 't', agentId: 'b1' }));
    expect(llm.sources.provider).toBe('agent');
    const policy = resolveCategory(
      'content_policy',
      layersOf('content_policy', rows, { content_policy: { enabled: false } }, { tenantId: 't' }),
    );
    expect(policy).toEqual({ values: { enabled: false }, sources: { enabled: 'tenant' } });
  });
});

describe('configuration writes and reads', () => {
  it('lists every invalid field of a patch', () => {
    const result = configPatchSchema('heartflow').safeParse({ talk_value: 2, quiet_hours: 'x', nope: 1 });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join('.') || i.code);
    expect(paths).toEqual(expect.arrayContaining(['talk_value', 'quiet_hours', 'unrecognized_keys']));
  });

  it('seals a new secret, keeps it on "***", removes it on null, and reads show "***"', () => {
    const first = applyConfigPatch('llm', {}, { api_key: 'sk-1', base_url: 'https://x.example' }, sealer);
    expect(first).not.toHaveProperty('api_key');
    expect(first.api_key_encrypted).toMatch(/^v1:/);
    expect(JSON.stringify(first)).not.toContain('sk-1');
    const kept = applyConfigPatch('llm', first, { api_key: '***', temperature: 0.2 }, sealer);
    expect(kept.api_key_encrypted).toBe(first.api_key_encrypted);
    expect(maskConfigValues('llm', kept)).toEqual({
      api_key: '***',
      base_url: 'https://x.example',
      temperature: 0.2,
    });
    const removed = applyConfigPatch('llm', kept, { api_key: null }, sealer);
    expect(removed).toEqual({ base_url: 'https://x.example', temperature: 0.2 });
  });

  it('publishes each category as JSON Schema with its defaults and documentation', () => {
    const schema = configJsonSchema() as Record<
      string,
      { properties: Record<string, { default?: unknown; description?: string }> }
    >;
    expect(Object.keys(schema)).toEqual([
      'llm',
      'heartflow',
      'memory',
      'emoji',
      'delivery',
      'content_policy',
    ]);
    expect(schema.heartflow!.properties.talk_value).toMatchObject({ default: 0.5, minimum: 0, maximum: 1 });
    expect(schema.heartflow!.properties.timezone!.default).toBe('UTC');
    expect(schema.content_policy!.properties.enabled!.default).toBe(true);
    expect(schema.llm!.properties.timeout_ms!.description).toMatch(/milliseconds/);
  });
});

describe('delivery and memory settings of a chat (what their workers read)', () => {
  const sealed = (plain: string) => sealer.encrypt(plain);

  it('takes the webhook secret only from the scope the URL comes from', () => {
    const agent = {
      scope: 'agent' as const,
      values: { webhook_url: 'https://agent.example/h', webhook_secret_encrypted: sealed('a') },
    };
    expect(deliverySettingsOf(resolveCategory('delivery', [agent]))).toEqual({
      webhook_url: 'https://agent.example/h',
      webhook_secret_encrypted: sealed('a'),
    });
    // A chat that overrides the URL only: unsigned, never signed with the agent's secret.
    const urlOnly = { scope: 'chat' as const, values: { webhook_url: 'https://chat.example/h' } };
    expect(deliverySettingsOf(resolveCategory('delivery', [agent, urlOnly]))).toEqual({
      webhook_url: 'https://chat.example/h',
    });
    const both = {
      scope: 'chat' as const,
      values: { webhook_url: 'https://chat.example/h', webhook_secret_encrypted: sealed('c') },
    };
    expect(deliverySettingsOf(resolveCategory('delivery', [agent, both]))).toEqual({
      webhook_url: 'https://chat.example/h',
      webhook_secret_encrypted: sealed('c'),
    });
    // A secret alone (no URL of its scope) does not sign the inherited URL either.
    const secretOnly = { scope: 'platform' as const, values: { webhook_secret_encrypted: sealed('p') } };
    expect(deliverySettingsOf(resolveCategory('delivery', [agent, secretOnly]))).toEqual({
      webhook_url: 'https://agent.example/h',
    });
  });

  it('reads a stored OneBot HTTP API with its sealed token at any scope, whole from one scope', () => {
    const tenant = { scope: 'tenant' as const, values: { onebot_http: { base_url: 'http://t.example' } } };
    const platform = {
      scope: 'platform' as const,
      values: { onebot_http: { base_url: 'http://p.example', access_token_encrypted: sealed('tok') } },
    };
    const resolved = resolveCategory('delivery', [tenant, platform]);
    expect(resolved.sources.onebot_http).toBe('platform');
    expect(deliverySettingsOf(resolved)).toEqual({
      onebot_http: { base_url: 'http://p.example', access_token_encrypted: sealed('tok') },
    });
  });

  it('gives the memory worker enabled, retention, summary size and the two caps, defaults when unset', () => {
    expect(memoryWorkerSettingsOf(resolveCategory('memory', []))).toEqual({
      enabled: true,
      retentionMs: undefined,
      summaryMessages: undefined,
      maxShortTerm: undefined,
      maxLongTerm: undefined,
    });
    const chat = {
      scope: 'chat' as const,
      values: {
        enabled: false,
        retention_days: 2,
        summary_messages: 8,
        max_short_term: 50,
        max_long_term: 500,
      },
    };
    expect(memoryWorkerSettingsOf(resolveCategory('memory', [chat]))).toStrictEqual({
      enabled: false,
      retentionMs: 2 * 86_400_000,
      summaryMessages: 8,
      maxShortTerm: 50,
      maxLongTerm: 500,
    });
  });
});
