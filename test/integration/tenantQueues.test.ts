import { type HeartflowJobData, TenantQueues } from '../../src/queues/tenantQueues';
import { keyspace } from '../../src/redis/keys';
import { heartflowJobData } from '../support/fixtures';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const bullPrefix = handle.appPrefix;
afterAll(async () => {
  // BullMQ's keys carry the queue prefix, which the handle's cleanup does not match.
  const keys = await handle.redis.keys(`${bullPrefix}:*`);
  if (keys.length > 0) await handle.redis.del(...keys);
  await handle.close();
});

/** A private message from an unknown sender (the shape matters less here than the ids). */
function jobData(tenantId: string, messageId: string): HeartflowJobData {
  return heartflowJobData(tenantId, messageId, {
    chatType: 'private',
    content: 'hi',
    sender: { userId: null, nickname: null, cardname: null, groupId: null, groupName: null },
  });
}

describe('the per-tenant queues of a process', () => {
  it('stores a job and announces it, with what goes along, in one call', async () => {
    const keys = keyspace(bullPrefix);
    const queues = new TenantQueues(handle.redis, bullPrefix);
    const subscriber = handle.redis.duplicate();
    try {
      const heard: [string, string][] = [];
      await subscriber.subscribe(keys.workAvailable('heartflow'), 'along-channel');
      subscriber.on('message', (channel: string, message: string) => heard.push([channel, message]));
      const data = jobData('tenant_g', 'msg_enqueue_1');
      await queues.enqueueHeartflow(data, [{ channel: 'along-channel', message: 'received' }]);
      const job = await queues.queue('tenant_g', 'heartflow').getJob('msg_enqueue_1');
      expect(job?.data).toEqual(data);
      expect(job?.opts.priority).toBe(5);
      expect(await queues.waitingCount('tenant_g')).toBe(1);
      expect(await handle.redis.sismember(keys.activeTenants('heartflow'), 'tenant_g')).toBe(1);
      const deadline = Date.now() + 2000;
      while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(heard).toEqual([
        [keys.workAvailable('heartflow'), 'tenant_g'],
        ['along-channel', 'received'],
      ]);
      // Adding the same message again stores nothing new.
      await queues.enqueueHeartflow(data);
      expect(await queues.waitingCount('tenant_g')).toBe(1);
    } finally {
      subscriber.disconnect();
      await queues.close();
    }
  });

  it('keeps at most its bound of queues open, closing the least recently used', async () => {
    const base = handle.redis.listenerCount('ready');
    const queues = new TenantQueues(handle.redis, bullPrefix, 3);
    try {
      const a = queues.queue('tenant_a', 'heartflow');
      queues.queue('tenant_b', 'heartflow');
      queues.queue('tenant_c', 'heartflow');
      // Touching a makes b the least recently used.
      expect(queues.queue('tenant_a', 'heartflow')).toBe(a);
      queues.queue('tenant_d', 'heartflow');
      expect(queues.openCount).toBe(3);
      expect(queues.queue('tenant_a', 'heartflow')).toBe(a);
      // The evicted queue lets go of the shared connection once its close has run.
      const deadline = Date.now() + 2000;
      while (handle.redis.listenerCount('ready') - base > 3 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(handle.redis.listenerCount('ready') - base).toBe(3);
    } finally {
      await queues.close();
    }
  });

  it('still stores a job added through a queue that was closed meanwhile', async () => {
    const queues = new TenantQueues(handle.redis, bullPrefix, 1);
    try {
      const data = jobData('tenant_e', 'msg_lru_1');
      const adding = queues.addHeartflow(data);
      // Another tenant's queue evicts tenant_e's while its add is in flight.
      queues.queue('tenant_f', 'heartflow');
      await adding;
      const job = await queues.queue('tenant_e', 'heartflow').getJob('msg_lru_1');
      expect(job?.data).toEqual(data);
    } finally {
      await queues.close();
    }
  });
});
