import { TenantQueues } from '../../src/queues/tenantQueues';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const bullPrefix = handle.prefix.replace(/:$/, '').replace(/:/g, '.');
afterAll(async () => {
  // BullMQ's keys carry the queue prefix, which the handle's cleanup does not match.
  const keys = await handle.redis.keys(`${bullPrefix}:*`);
  if (keys.length > 0) await handle.redis.del(...keys);
  await handle.close();
});

describe('the per-tenant queues of a process', () => {
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
      const data = {
        messageId: 'msg_lru_1',
        tenantId: 'tenant_e',
        agentId: 'default',
        platform: 'qq',
        chatStreamId: 'c1',
        chatType: 'private' as const,
        content: 'hi',
        clientMessageId: null,
        replyTo: null,
        sender: { userId: null, nickname: null, cardname: null, groupId: null, groupName: null },
        segments: [],
        mentioned: false,
        options: { enableMemory: true, enableEmoji: true, priority: 'normal' as const },
        receivedAt: Date.now(),
        source: 'http' as const,
      };
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
