import { isIdentifier } from '../../src/domain/isolationContext';
import { JOB_KINDS, parseTenantQueueName, tenantQueueName } from '../../src/queues/names';
import { decodeId, encodeId, keyspace } from '../../src/redis/keys';

const redisKeys = keyspace('mh');

describe('queue names and Redis keys', () => {
  it('builds a hash-tagged queue name per tenant and kind, without the colon BullMQ forbids', () => {
    expect(tenantQueueName('acme', 'heartflow')).toBe('{acme}.heartflow');
    expect(tenantQueueName('a:b', 'memory')).toBe('{a%3Ab}.memory');
    expect(tenantQueueName('a:b', 'memory')).not.toContain(':');
  });

  it('round-trips every kind and awkward tenant ids through parseTenantQueueName', () => {
    for (const tenantId of ['acme', 'a:b', 'x.y-z_1', 'a%3Ab']) {
      for (const kind of JOB_KINDS) {
        expect(parseTenantQueueName(tenantQueueName(tenantId, kind))).toEqual({ tenantId, kind });
      }
    }
  });

  it('rejects names that are not tenant queues', () => {
    expect(parseTenantQueueName('plain')).toBeUndefined();
    expect(parseTenantQueueName('{acme}.unknown')).toBeUndefined();
  });

  it('keeps keys of tenants whose ids differ only by encoding apart', () => {
    expect(encodeId('a%3Ab')).not.toBe(encodeId('a:b'));
    expect(decodeId(encodeId('a%3Ab'))).toBe('a%3Ab');
    expect(redisKeys.tenantMeta('a:b')).not.toBe(redisKeys.tenantMeta('a%3Ab'));
  });

  it('puts every key under the configured prefix', () => {
    expect(keyspace('mhtest1').tenantMeta('t1')).toBe('mhtest1:{t1}:meta');
    expect(keyspace('mhtest1').revokedToken('t1', 'j')).toMatch(/^mhtest1:/);
  });

  it('tags every tenant key with its tenant', () => {
    const keys = [
      redisKeys.tenantMeta('t1'),
      redisKeys.idempotency('t1', 'bot', 'c1'),
      redisKeys.rateBucket('t1', 'tenant'),
      redisKeys.quotaCounter('t1', 'llm', '2026-11-24'),
      redisKeys.knownStreams('t1'),
      redisKeys.streamEvents('t1', 'chat'),
      redisKeys.messageDone('t1'),
      redisKeys.llmSlots('t1'),
      redisKeys.revokedToken('t1', 'jti'),
      redisKeys.revokedFamily('t1', 'fam'),
    ];
    for (const key of keys) expect(key).toContain('{t1}');
  });

  it('keeps the platform admins’ revocation keys under one tag no tenant can have', () => {
    const platform = [redisKeys.revokedToken(undefined, 'j'), redisKeys.revokedFamily(undefined, 'f')];
    for (const key of platform) expect(key).toContain('{~platform}');
    expect(isIdentifier('~platform')).toBe(false);
  });

  it('lets tenant deletion find the LLM slot holders of its tenant only', () => {
    // For ids without glob metacharacters the pattern is a literal prefix followed by `*`.
    const pattern = redisKeys.tenantKeysPattern('t1');
    expect(pattern.endsWith(':*')).toBe(true);
    const prefix = pattern.slice(0, -1);
    expect(redisKeys.llmSlots('t1').startsWith(prefix)).toBe(true);
    expect(redisKeys.llmSlots('t10').startsWith(prefix)).toBe(false);
  });
});
