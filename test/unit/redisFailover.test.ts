import { ServiceUnavailableError } from '../../src/errors';
import { AnnouncementError } from '../../src/queues/tenantQueues';
import { isRedisUnavailable, mapRedisError } from '../../src/redis/availability';
import { hashTagOf } from '../../src/redis/connect';

describe('a Redis Cluster failover, as the code sees it', () => {
  it('treats spent cluster redirections as Redis being unavailable (a 503 with Retry-After)', () => {
    for (const last of [
      'ReplyError: MOVED 3172 127.0.0.1:25770',
      'ReplyError: CLUSTERDOWN The cluster is down',
      'Error: Connection is closed.',
    ]) {
      const err = new Error(`Too many Cluster redirections. Last error: ${last}`);
      expect(isRedisUnavailable(err)).toBe(true);
      const mapped = mapRedisError(err);
      expect(mapped).toBeInstanceOf(ServiceUnavailableError);
      expect((mapped as ServiceUnavailableError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }
  });

  it('treats a cluster client re-reading its slot map after a failover as Redis being unavailable', () => {
    for (const message of [
      "Cluster isn't ready and enableOfflineQueue options is false",
      'Node is disconnected',
      'Cluster is disconnected.',
      // A slot that moved under a pipeline: the reply itself reaches the caller.
      'MOVED 3172 127.0.0.1:32410',
      'ASK 3172 127.0.0.1:32410',
    ]) {
      const mapped = mapRedisError(new Error(message));
      expect(mapped).toBeInstanceOf(ServiceUnavailableError);
      expect((mapped as ServiceUnavailableError).retryAfterSeconds).toBeGreaterThan(0);
    }
  });

  it('sees an unreachable Redis behind an error that wraps it (a job stored but not announced)', () => {
    const announcement = new AnnouncementError(
      'msg_1',
      new Error('Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down'),
    );
    expect(mapRedisError(announcement)).toBeInstanceOf(ServiceUnavailableError);
    expect(isRedisUnavailable(new AnnouncementError('msg_1', new Error('ERR unknown command')))).toBe(false);
    // Only a reply that starts with it: a message that mentions the word is not a redirection.
    expect(isRedisUnavailable(new Error('ERR value MOVED is not an integer'))).toBe(false);
  });

  it('leaves a command error that is not about availability alone', () => {
    expect(isRedisUnavailable(new Error('ERR wrong number of arguments for command'))).toBe(false);
    expect(isRedisUnavailable(new Error('CROSSSLOT Keys in request don’t hash to the same slot'))).toBe(
      false,
    );
  });

  it('groups keys by the hash tag that decides their slot', () => {
    expect(hashTagOf('mh:{alpha}:tm:api:m:0')).toBe('alpha');
    expect(hashTagOf('mh:{_tm}:total:api')).toBe('_tm');
    // No tag, an empty one, or an unclosed one: the whole key decides (Redis Cluster's rule).
    expect(hashTagOf('mh:plain')).toBe('mh:plain');
    expect(hashTagOf('mh:{}:x{a}')).toBe('mh:{}:x{a}');
    expect(hashTagOf('mh:{open')).toBe('mh:{open');
    // Only the first tag counts.
    expect(hashTagOf('{a}{b}')).toBe('a');
  });
});
