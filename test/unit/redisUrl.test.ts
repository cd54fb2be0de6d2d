import { loadConfig } from '../../src/config';
import { parseRedisUrl } from '../../src/redis/connect';

describe('REDIS_URL', () => {
  it('reads one server', () => {
    expect(parseRedisUrl('redis://:pw@127.0.0.1:6379/2')).toEqual({
      kind: 'single',
      url: 'redis://:pw@127.0.0.1:6379/2',
    });
  });

  it('reads a cluster seed list, with a password and TLS', () => {
    expect(parseRedisUrl('redis-cluster://h1:7000,h2:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
    expect(parseRedisUrl('rediss-cluster://:s%40cret@h1:7000')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'h1', port: 7000 }],
      password: 's@cret',
      tls: true,
    });
  });

  it('refuses other schemes and nodes without a port', () => {
    expect(() => parseRedisUrl('http://h1:6379')).toThrow(/must start with/);
    expect(() => parseRedisUrl('redis-cluster://h1,h2:7001')).toThrow(/"h1" is not host:port/);
  });

  it('is accepted by the configuration in both forms, and a malformed one is not', () => {
    expect(loadConfig({ REDIS_URL: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000' }).redisUrl).toBe(
      'redis-cluster://10.0.0.1:7000,10.0.0.2:7000',
    );
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisUrl).toBe('redis://127.0.0.1:6379');
    expect(() => loadConfig({ REDIS_URL: 'redis-cluster://10.0.0.1' })).toThrow(/REDIS_URL/);
  });
});
