import { type MessageDoneEvent, parseMessageDone } from '../queues/messageEvents';
import type { ChannelHub } from '../redis/channelHub';
import type { Keyspace } from '../redis/keys';

/** Interest in one message's outcome, registered before its job is enqueued. */
export interface Expectation {
  /** Resolves with the outcome once a worker announces it (never rejects). */
  readonly outcome: Promise<MessageDoneEvent>;
  /** Stops listening; idempotent. */
  cancel(): void;
}

interface TenantChannel {
  waiters: Map<string, ((e: MessageDoneEvent) => void)[]>;
  /** Resolves once subscribed, with the function that unsubscribes. */
  subscription: Promise<() => void>;
  /** Set while the channel has no waiter: unsubscribes unless a send waits again first. */
  idle?: NodeJS.Timeout | undefined;
}

/**
 * How long a tenant's channel stays subscribed after its last waiter, ms. An adapter waiting on
 * its sends one at a time would otherwise cost a SUBSCRIBE and an UNSUBSCRIBE per message; an idle
 * channel costs only the announcements it carries meanwhile, dropped unparsed.
 */
export const LINGER_MS = 10_000;

/**
 * The `?wait` requests of one process, per tenant: one listener on the tenant's `messageDone`
 * channel parses each announcement once and hands it to the waiters of that message only (the
 * channel carries every outcome of the tenant). A send registers before it enqueues, so the
 * outcome of its job cannot be published before the channel is subscribed: no status read needed.
 */
export class OutcomeWaiters {
  private readonly tenants = new Map<string, TenantChannel>();

  constructor(
    private readonly channels: ChannelHub,
    private readonly keys: Keyspace,
    private readonly lingerMs = LINGER_MS,
  ) {}

  /** Tenants whose channel is subscribed (or subscribing) now. */
  get subscribedTenants(): number {
    return this.tenants.size;
  }

  /** Resolves once the tenant's channel is subscribed; rejects (503) when Redis cannot subscribe. */
  async expect(tenantId: string, messageId: string): Promise<Expectation> {
    let channel = this.tenants.get(tenantId);
    if (!channel) {
      const waiters: TenantChannel['waiters'] = new Map();
      const subscription = this.channels.subscribe(this.keys.messageDone(tenantId), (raw) => {
        if (waiters.size === 0) return;
        const event = parseMessageDone(raw);
        const list = event && waiters.get(event.message_id);
        if (!list) return;
        waiters.delete(event.message_id);
        for (const resolve of list) resolve(event);
      });
      channel = { waiters, subscription };
      this.tenants.set(tenantId, channel);
      // A failed subscription is not reused: the next send tries again.
      subscription.catch(() => {
        if (this.tenants.get(tenantId) === channel) this.tenants.delete(tenantId);
      });
    }
    clearTimeout(channel.idle);
    channel.idle = undefined;
    const { waiters } = channel;
    let resolveOutcome!: (e: MessageDoneEvent) => void;
    const outcome = new Promise<MessageDoneEvent>((resolve) => (resolveOutcome = resolve));
    const list = waiters.get(messageId) ?? [];
    list.push(resolveOutcome);
    waiters.set(messageId, list);
    let cancelled = false;
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      const current = waiters.get(messageId);
      const rest = current?.filter((r) => r !== resolveOutcome) ?? [];
      if (rest.length > 0) waiters.set(messageId, rest);
      else waiters.delete(messageId);
      this.release(tenantId, channel);
    };
    try {
      await channel.subscription;
    } catch (err) {
      cancel();
      throw err;
    }
    return { outcome, cancel };
  }

  /** Unsubscribes a tenant's channel once its last waiter has been gone for `lingerMs`. */
  private release(tenantId: string, channel: TenantChannel): void {
    if (channel.waiters.size > 0 || this.tenants.get(tenantId) !== channel) return;
    clearTimeout(channel.idle);
    channel.idle = setTimeout(() => {
      if (channel.waiters.size > 0 || this.tenants.get(tenantId) !== channel) return;
      this.tenants.delete(tenantId);
      channel.subscription.then(
        (unsubscribe) => unsubscribe(),
        () => undefined,
      );
    }, this.lingerMs);
    channel.idle.unref();
  }
}
