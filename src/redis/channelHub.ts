import type { Redis } from 'ioredis';

import type { Logger } from '../logger';
import { mapRedisError, withDeadline } from './availability';
import { duplicateRedis } from './connect';

export type ChannelListener = (message: string) => void;

/** ms a (re)subscription may take before the caller gets 503. */
const SUBSCRIBE_TIMEOUT_MS = 3000;

/**
 * One Redis subscriber connection per process, shared by every SSE client and `?wait` request:
 * channels are reference-counted (SUBSCRIBE on the first listener, UNSUBSCRIBE after the last),
 * so the connection count does not grow with clients or tenants. Events published by any API or
 * worker process reach the listeners of every process. ioredis resubscribes after a reconnect.
 */
export class ChannelHub {
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<ChannelListener>>();
  /** The SUBSCRIBE in flight (or done) per channel, awaited by later listeners of that channel. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  /**
   * Adds a listener and resolves once the channel is subscribed, so that a caller can then read
   * state without missing an event published in between. Returns the unsubscribe function.
   */
  async subscribe(channel: string, listener: ChannelListener): Promise<() => void> {
    if (this.closed) throw mapRedisError(new Error('Connection is closed.'));
    const subscriber = this.connection();
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.subscribed.set(channel, subscriber.subscribe(channel));
    }
    set.add(listener);
    const unsubscribe = () => this.remove(channel, listener);
    try {
      await withDeadline(this.subscribed.get(channel)!, SUBSCRIBE_TIMEOUT_MS, 'Redis subscribe');
    } catch (err) {
      unsubscribe();
      throw mapRedisError(err);
    }
    return unsubscribe;
  }

  /** Number of channels with listeners (for tests and metrics). */
  get channelCount(): number {
    return this.listeners.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.subscribed.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  private remove(channel: string, listener: ChannelListener): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(channel);
    this.subscribed.delete(channel);
    this.subscriber?.unsubscribe(channel).catch((err: unknown) => {
      // Still subscribed after a failed UNSUBSCRIBE: messages then find no listener and are dropped.
      this.logger.debug({ err, channel }, 'redis unsubscribe failed');
    });
  }

  private connection(): Redis {
    if (this.subscriber) return this.subscriber;
    // A subscriber connection may wait for its commands while reconnecting (the deadline above
    // bounds the caller), and has no per-command timeout: it sits idle between messages.
    const subscriber = duplicateRedis(this.redis, {
      enableAutoPipelining: false,
      enableOfflineQueue: true,
      commandTimeout: undefined,
      maxRetriesPerRequest: null,
    });
    subscriber.on('error', (err: Error) => this.logger.warn({ err }, 'redis subscriber error'));
    subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.listeners.get(channel) ?? []) {
        try {
          listener(message);
        } catch (err) {
          this.logger.error({ err, channel }, 'channel listener failed');
        }
      }
    });
    this.subscriber = subscriber;
    return subscriber;
  }
}
