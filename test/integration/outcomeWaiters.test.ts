import { OutcomeWaiters } from '../../src/ingress/outcomeWaiters';
import { createLogger } from '../../src/logger';
import { publishMessageDone } from '../../src/queues/messageEvents';
import { ChannelHub } from '../../src/redis/channelHub';
import { keyspace } from '../../src/redis/keys';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const { redis, prefix } = handle;
const keys = keyspace(prefix);
let hub: ChannelHub;
let subscribes: string[];

beforeEach(() => {
  hub = new ChannelHub(redis, createLogger({ level: 'silent' }));
  subscribes = [];
  const subscribe = hub.subscribe.bind(hub);
  hub.subscribe = (channel, listener) => {
    subscribes.push(channel);
    return subscribe(channel, listener);
  };
});

afterEach(() => hub.close());

afterAll(async () => {
  await handle.close();
  redis.disconnect();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('OutcomeWaiters', () => {
  it("hands a message's outcome to its waiter only", async () => {
    const waiters = new OutcomeWaiters(hub, keys, 60_000);
    const mine = await waiters.expect('acme', 'm1');
    const other = await waiters.expect('acme', 'm2');
    await publishMessageDone(redis, keys, 'acme', { message_id: 'm1', status: 'replied', response: 'hi' });
    await expect(mine.outcome).resolves.toMatchObject({ message_id: 'm1', response: 'hi' });
    let settled = false;
    void other.outcome.then(() => (settled = true));
    await sleep(50);
    expect(settled).toBe(false);
    mine.cancel();
    other.cancel();
  });

  it('keeps the tenant subscribed between sends waited on one at a time, and lets go after the linger', async () => {
    const waiters = new OutcomeWaiters(hub, keys, 300);
    for (let i = 0; i < 5; i++) {
      const e = await waiters.expect('globex', `m${i}`);
      await publishMessageDone(redis, keys, 'globex', { message_id: `m${i}`, status: 'no_reply' });
      await expect(e.outcome).resolves.toMatchObject({ message_id: `m${i}` });
      e.cancel();
      await sleep(30); // the adapter's next message comes a little later
    }
    // One SUBSCRIBE for the five sends (it used to be one SUBSCRIBE and one UNSUBSCRIBE each).
    expect(subscribes).toEqual([keys.messageDone('globex')]);
    expect(waiters.subscribedTenants).toBe(1);
    await sleep(600);
    expect(waiters.subscribedTenants).toBe(0);
    // Waiting again subscribes again, and still hears its outcome.
    const again = await waiters.expect('globex', 'm9');
    await publishMessageDone(redis, keys, 'globex', { message_id: 'm9', status: 'replied' });
    await expect(again.outcome).resolves.toMatchObject({ message_id: 'm9' });
    again.cancel();
    expect(subscribes).toHaveLength(2);
  });
});
