/**
 * The chat stream lock's handover, against real Redis: a job that stored its message while
 * another holds the lock marks the stream, and the holder takes one more pass for it before it
 * lets go; nothing is left behind whichever way the two interleave. A lock handed over outlives
 * its holder for the job that adopts it.
 */
import { StreamLock, type StreamLockKeys } from '../../src/workers/streamLock';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const { redis, prefix } = handle;
let n = 0;

function keys(): StreamLockKeys {
  n++;
  return { lock: `${prefix}lock:${n}`, dirty: `${prefix}dirty:${n}`, lastPass: `${prefix}last:${n}` };
}

afterAll(() => handle.close());

describe('StreamLock', () => {
  it('lets one holder in; `take` by another leaves no mark', async () => {
    const k = keys();
    const [a, b] = [new StreamLock(redis, k, 2000), new StreamLock(redis, k, 2000)];
    expect(await a.take()).toBe(true);
    expect(await b.take()).toBe(false);
    expect(await a.releaseUnlessDirty(1000)).toBe(true);
    expect(await b.take()).toBe(true);
    await b.release();
  });

  it('keeps the lock for another pass when a message was stored meanwhile, then lets go', async () => {
    const k = keys();
    const [holder, late] = [new StreamLock(redis, k, 2000), new StreamLock(redis, k, 2000)];
    expect(await holder.take()).toBe(true);
    // A job stored its message and finds the stream busy: it marks it instead.
    expect(await late.takeOrMark()).toBe(false);
    expect(await holder.releaseUnlessDirty(1000)).toBe(false);
    // The extra pass saw the message; nothing new since: released.
    expect(await holder.releaseUnlessDirty(1001)).toBe(true);
    expect(await late.takeOrMark()).toBe(true);
    // The next holder learns when the stream's last pass ended.
    expect(late.lastPassEndedAt).toBe(1001);
    expect(await late.releaseUnlessDirty(1002)).toBe(true);
  });

  it('hands the stream to a job that comes after the release', async () => {
    const k = keys();
    const [holder, next] = [new StreamLock(redis, k, 2000), new StreamLock(redis, k, 2000)];
    expect(await holder.take()).toBe(true);
    expect(holder.lastPassEndedAt).toBeUndefined();
    expect(await holder.releaseUnlessDirty(5000)).toBe(true);
    expect(await next.takeOrMark()).toBe(true);
    await next.release();
  });

  it('does not release a lock that is no longer its own (it expired and another took it)', async () => {
    const k = keys();
    const short = new StreamLock(redis, k, 50);
    const other = new StreamLock(redis, k, 2000);
    expect(await short.take()).toBe(true);
    await short.release();
    expect(await other.take()).toBe(true);
    expect(await short.releaseUnlessDirty(1000)).toBe(true);
    expect(await redis.exists(k.lock)).toBe(1);
    await other.release();
    expect(await redis.exists(k.lock)).toBe(0);
  });

  it('hands the lock over: it outlives its holder for the job that adopts it with its token', async () => {
    const k = keys();
    const holder = new StreamLock(redis, k, 2000);
    expect(await holder.take()).toBe(true);
    await holder.handOver(5000);
    expect(await new StreamLock(redis, k, 2000).takeOrMark()).toBe(false);
    expect(await new StreamLock(redis, k, 2000, 'someone-else').adopt()).toBe(false);
    const sweep = new StreamLock(redis, k, 2000, holder.token);
    expect(await sweep.adopt()).toBe(true);
    // The mark left meanwhile is the sweep's to honour.
    expect(await sweep.releaseUnlessDirty(1000)).toBe(false);
    expect(await sweep.releaseUnlessDirty(1001)).toBe(true);
    // A lock that expired before its sweep ran cannot be adopted.
    const gone = new StreamLock(redis, k, 2000);
    expect(await gone.take()).toBe(true);
    await gone.handOver(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(await new StreamLock(redis, k, 2000, gone.token).adopt()).toBe(false);
  });
});
