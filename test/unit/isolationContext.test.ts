import {
  createChatStreamContext,
  createIsolationContext,
  narrowContext,
} from '../../src/domain/isolationContext';
import { ValidationError } from '../../src/errors';

function validationFields(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).fields.map((f) => f.path);
  }
  throw new Error('expected a ValidationError');
}

describe('createIsolationContext', () => {
  it('builds a full T+A+C+P context like the seed', () => {
    const ctx = createIsolationContext({
      tenantId: 'tenant_001',
      agentId: 'agent_001',
      platform: 'qq',
      chatStreamId: 'chat_001',
    });
    expect(ctx).toMatchObject({
      tenantId: 'tenant_001',
      agentId: 'agent_001',
      platform: 'qq',
      chatStreamId: 'chat_001',
    });
    expect(ctx.level).toBe('T+A+C+P');
  });

  it('builds a tenant-only context at level T', () => {
    expect(createIsolationContext({ tenantId: 'acme' }).level).toBe('T');
  });

  it('builds a tenant+agent context at level T+A', () => {
    expect(createIsolationContext({ tenantId: 'acme', agentId: 'bot' }).level).toBe('T+A');
  });

  it('builds a tenant+agent+platform context at level T+A+P', () => {
    expect(createIsolationContext({ tenantId: 'acme', agentId: 'bot', platform: 'discord' }).level).toBe(
      'T+A+P',
    );
  });

  it('is frozen: assignments neither change it nor go unnoticed', () => {
    const ctx = createIsolationContext({ tenantId: 'acme', agentId: 'bot' });
    expect(Object.isFrozen(ctx)).toBe(true);
    expect(() => {
      (ctx as { tenantId: string }).tenantId = 'other';
    }).toThrow(TypeError);
    expect(ctx.tenantId).toBe('acme');
  });

  it('gives a stable scope string that separates dimensions unambiguously', () => {
    const a = createIsolationContext({ tenantId: 'a:b', agentId: 'c' });
    const b = createIsolationContext({ tenantId: 'a', agentId: 'b:c' });
    expect(a.scope).toBe('a:b/c');
    expect(b.scope).toBe('a/b:c');
    expect(a.scope).not.toBe(b.scope);
    expect(createIsolationContext({ tenantId: 'a:b', agentId: 'c' }).scope).toBe(a.scope);
  });

  it('accepts identifiers with dots, dashes, colons and underscores up to 128 characters', () => {
    const id = `A${'b'.repeat(127)}`;
    expect(createIsolationContext({ tenantId: id, agentId: 'x.y-z:1_2' }).tenantId).toBe(id);
  });

  it.each([
    ['an empty tenant id', { tenantId: '' }, ['tenant_id']],
    ['a tenant id with a space', { tenantId: 'a b' }, ['tenant_id']],
    ['a tenant id starting with a dash', { tenantId: '-acme' }, ['tenant_id']],
    ['a tenant id of 129 characters', { tenantId: `a${'b'.repeat(128)}` }, ['tenant_id']],
    ['SQL in the tenant id', { tenantId: "x'; DROP TABLE messages; --" }, ['tenant_id']],
    ['a slash (the scope separator) in the agent id', { tenantId: 'acme', agentId: 'a/b' }, ['agent_id']],
    ['non-ASCII in the platform', { tenantId: 'acme', agentId: 'bot', platform: 'ＱＱ' }, ['platform']],
    [
      'a newline in the chat stream id',
      { tenantId: 'acme', agentId: 'b', platform: 'qq', chatStreamId: 'c\n' },
      ['chat_stream_id'],
    ],
  ])('rejects %s with a typed validation error', (_name, input, fields) => {
    expect(validationFields(() => createIsolationContext(input))).toEqual(fields);
  });

  it('rejects a missing tenant id', () => {
    expect(validationFields(() => createIsolationContext({} as { tenantId: string }))).toEqual(['tenant_id']);
  });

  it('rejects a non-string tenant id', () => {
    expect(validationFields(() => createIsolationContext({ tenantId: 42 as unknown as string }))).toEqual([
      'tenant_id',
    ]);
  });

  it('rejects a platform without an agent (no such level)', () => {
    expect(validationFields(() => createIsolationContext({ tenantId: 'acme', platform: 'qq' }))).toEqual([
      'platform',
    ]);
  });

  it('rejects a chat stream without a platform (no such level)', () => {
    expect(
      validationFields(() =>
        createIsolationContext({ tenantId: 'acme', agentId: 'bot', chatStreamId: 'c1' }),
      ),
    ).toEqual(['chat_stream_id']);
  });

  it('lists every failing field at once', () => {
    expect(
      validationFields(() => createIsolationContext({ tenantId: 'a b', agentId: 'c d', platform: '' })),
    ).toEqual(['tenant_id', 'agent_id', 'platform']);
  });

  it('narrows a context to a chat stream and keeps the tenant', () => {
    const ctx = narrowContext(createIsolationContext({ tenantId: 'acme', agentId: 'bot' }), {
      platform: 'qq',
      chatStreamId: 'c1',
    });
    expect(ctx).toMatchObject({
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'c1',
      level: 'T+A+C+P',
    });
  });

  it('validates what narrowing adds', () => {
    expect(
      validationFields(() =>
        narrowContext(createIsolationContext({ tenantId: 'acme' }), { agentId: 'bad id' }),
      ),
    ).toEqual(['agent_id']);
  });
});

describe('createChatStreamContext', () => {
  it('builds the full T+A+C+P scope, frozen', () => {
    const ctx = createChatStreamContext({
      tenantId: 'acme',
      agentId: 'bot1',
      platform: 'qq',
      chatStreamId: 'c_1',
    });
    expect(ctx).toMatchObject({ level: 'T+A+C+P', scope: 'acme/bot1/qq/c_1', chatStreamId: 'c_1' });
    expect(Object.isFrozen(ctx)).toBe(true);
  });

  it('validates every dimension as createIsolationContext does', () => {
    expect(
      validationFields(() =>
        createChatStreamContext({
          tenantId: 'acme',
          agentId: 'bot1',
          platform: 'qq',
          chatStreamId: 'bad id',
        }),
      ),
    ).toEqual(['chat_stream_id']);
  });
});
