/**
 * Deleting a tenant leaves nothing behind, in a process composed as `npm start` runs it: after the
 * tenant has had work through every part of the system (sends answered by the workers, the queue
 * listing and the dashboard looked at), `DELETE /tenants/{id}` leaves no Redis key with its hash
 * tag (BullMQ's queue keys included), no trace in the dispatchers' shared sets, and no row.
 */
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';
import { tenantRowCounts } from '../support/tenantSnapshot';

let h: RuntimeHarness;

beforeAll(async () => {
  h = await startRuntimeHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** Every key carrying the tenant's hash tag: its own keys and its queues' keys. */
async function keysOf(tenantId: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await h.redis.redis.scan(
      cursor,
      'MATCH',
      `${h.prefix}:{${tenantId}}*`,
      'COUNT',
      1000,
    );
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/** The shared (untagged) keys whose members name the tenant. */
async function sharedMentions(tenantId: string): Promise<string[]> {
  const mentions: string[] = [];
  for (const key of await h.redis.redis.keys(`${h.prefix}:{~active}:*`)) {
    if ((await h.redis.redis.sismember(key, tenantId)) === 1) mentions.push(key);
  }
  return mentions;
}

const rowsOf = (tenantId: string) => tenantRowCounts(h.t, tenantId);

describe('tenant deletion in a running system', () => {
  it('leaves no Redis key, shared-set entry or row of the tenant, and the other tenant intact', async () => {
    const bearer = await h.adminBearer();
    const doomedKey = await h.tenantWithKey('doomed');
    const survivorKey = await h.tenantWithKey('survivor');
    for (const [key, n] of [
      [doomedKey, 3],
      [survivorKey, 1],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const sent = await h.call('POST', '/chat/send?wait=20000', {
          apiKey: key,
          body: { message: `@麦麦 你好 ${i}`, chat_stream_id: `c${i}`, platform: 'qq' },
        });
        expect(sent.data.status).toBe('replied');
      }
    }
    // Operators look at the tenant's queues: the listing and the dashboard open its queues.
    expect((await h.call('GET', '/admin/queues?limit=100', { bearer })).status).toBe(200);
    expect((await h.call('GET', '/admin/queues/doomed', { bearer })).status).toBe(200);
    const board = await fetch(`${h.runtime.url}/api/v1/admin/ui/api/queues`, {
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(board.status).toBe(200);
    expect((await keysOf('doomed')).length).toBeGreaterThan(0);
    const survivorRows = await rowsOf('survivor');

    const deleted = await h.call('DELETE', '/tenants/doomed', { bearer });
    expect(deleted.status).toBe(200);
    // Whatever runs on afterwards (dispatchers, the dashboard's and listing's next polls) must not
    // bring a key back.
    expect((await h.call('GET', '/admin/queues?limit=100', { bearer })).status).toBe(200);
    expect(
      (
        await fetch(`${h.runtime.url}/api/v1/admin/ui/api/queues`, {
          headers: { authorization: `Bearer ${bearer}` },
        })
      ).status,
    ).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));

    expect(await keysOf('doomed')).toEqual([]);
    expect(await sharedMentions('doomed')).toEqual([]);
    const left = Object.entries(await rowsOf('doomed')).filter(([, n]) => n > 0);
    expect(left).toEqual([]);

    expect(await rowsOf('survivor')).toEqual(survivorRows);
    // The survivor's queues and stream registry are where they were (its transient keys come and go).
    expect(await keysOf('survivor')).toEqual(
      expect.arrayContaining([`${h.prefix}:{survivor}.heartflow:meta`, `${h.prefix}:{survivor}:streams`]),
    );
    const again = await h.call('POST', '/chat/send?wait=20000', {
      apiKey: survivorKey,
      body: { message: '@麦麦 还在吗', chat_stream_id: 'c9', platform: 'qq' },
    });
    expect(again.data.status).toBe('replied');
  }, 120_000);
});
