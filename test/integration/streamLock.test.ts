/**
 * The chat stream lock's handover, against real Redis: a job that stored its message while
 * another holds the lock marks the stream, and the holder takes one more pass for it before it
 * lets go; nothing is left behind whichever way the two interleave.
 */
import { StreamLock } from '../../src/workers/streamLock';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const { redis, prefix } = handle;
let n = 0;

function locks(): [StreamLock, StreamLock] {
  n++;
  const make = () => new StreamLock(redis, `${prefix}lock:${n}`, `${prefix}dirty:${n}`, 2000);
  return [make(), make()];
}

afterAll(() => handle.close());

describe('StreamLock', () => {
  it('lets one holder in; `take` by another leaves no mark', async () => {
    const [a, b] = locks();
    expect(await a.take()).toBe(true);
    expect(await b.take()).toBe(false);
    expect(await a.releaseUnlessDirty()).toBe(true);
    expect(await b.take()).toBe(true);
    await b.release();
  });

  it('keeps the lock for another pass when a message was stored meanwhile, then lets go', async () => {
    const [holder, late] = locks();
    expect(await holder.take()).toBe(true);
    // A job stored its message and finds the stream busy: it marks it instead.
    expect(await late.takeOrMark()).toBe(false);
    expect(await holder.releaseUnlessDirty()).toBe(false);
    // The extra pass saw the message; nothing new since: released.
    expect(await holder.releaseUnlessDirty()).toBe(true);
    expect(await late.takeOrMark()).toBe(true);
    expect(await late.releaseUnlessDirty()).toBe(true);
  });

  it('hands the stream to a job that comes after the release', async () => {
    const [holder, next] = locks();
    expect(await holder.take()).toBe(true);
    expect(await holder.releaseUnlessDirty()).toBe(true);
    expect(await next.takeOrMark()).toBe(true);
    await next.release();
  });

  it('does not release a lock that is no longer its own (it expired and another took it)', async () => {
    n++;
    const short = new StreamLock(redis, `${prefix}lock:${n}`, `${prefix}dirty:${n}`, 50);
    const other = new StreamLock(redis, `${prefix}lock:${n}`, `${prefix}dirty:${n}`, 2000);
    expect(await short.take()).toBe(true);
    await short.release();
    expect(await other.take()).toBe(true);
    expect(await short.releaseUnlessDirty()).toBe(true);
    expect(await redis.exists(`${prefix}lock:${n}`)).toBe(1);
    await other.release();
    expect(await redis.exists(`${prefix}lock:${n}`)).toBe(0);
  });
});
