import { CONNECTION_FAILURE_CODES, MaiHiveError, ServiceUnavailableError } from '../errors';

/** Seconds a client is told to wait (`Retry-After`) when Redis is unreachable. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

// ioredis client-side failures (no connection, offline queue disabled, command timeout, retries
// spent) and server replies that mean "not now" (loading, failover, cluster reconfiguring). A
// cluster client that spent its redirections while a master failed over says "Too many Cluster
// redirections. Last error: …" (MOVED to the dead master, CLUSTERDOWN, a closed connection); while
// it re-reads the slot map after a failover, commands fail at once with "Cluster isn't ready …"
// (no offline queue) or "Node is disconnected". A bare `MOVED`/`ASK` reply reaches the caller when
// a slot moved under a pipeline of commands (ioredis redirects single commands itself): the
// failover test's one 500 in a few runs was `MOVED 3172 127.0.0.1:…` from a send's Redis work.
const UNAVAILABLE_MESSAGE =
  /Stream isn't writeable|Cluster isn't ready|Cluster is disconnect|Node is disconnected|Connection is closed|Command timed out|max retries|MaxRetriesPerRequest|None of startup nodes|Failed to refresh slots cache|Too many Cluster redirections|^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|BUSY|MOVED|ASK)\b|connect (ECONNREFUSED|ETIMEDOUT)/i;

/**
 * Whether an error says Redis cannot be reached right now (as opposed to a bug or a bad command),
 * itself or through its `cause`: e.g. a job stored but not announced because, on a cluster, the
 * shared active-tenant set's master was failing over (`AnnouncementError`).
 */
export function isRedisUnavailable(err: unknown, depth = 0): boolean {
  if (err instanceof MaiHiveError || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && CONNECTION_FAILURE_CODES.has(e.code)) return true;
  if (e.name === 'MaxRetriesPerRequestError' || e.name === 'ConnectionClosedError') return true;
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message)) return true;
  return depth < 4 && e.cause !== undefined && isRedisUnavailable(e.cause, depth + 1);
}

/** Redis connection failures become 503 SERVICE_UNAVAILABLE with `Retry-After`; anything else is returned as is. */
export function mapRedisError(err: unknown): unknown {
  return isRedisUnavailable(err)
    ? new ServiceUnavailableError('Redis is unavailable', REDIS_RETRY_AFTER_SECONDS, { cause: err })
    : err;
}

/**
 * Settles with the promise, or fails with 503 once `ms` have passed: a request never hangs on a
 * Redis that accepts connections but does not answer (or on BullMQ waiting for a reconnect).
 * The losing promise is left to settle on its own; its rejection is swallowed.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = new Deadline(Date.now() + ms);
  return deadline.race(promise, what).finally(() => deadline.clear());
}

/**
 * One deadline for several steps in turn (`withDeadline` with one timer for all of them): each
 * `race` settles with its promise, or fails with 503 naming that step once the deadline has
 * passed. `clear()` when done, on every path.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private expiry: Promise<never> | undefined;
  private step = '';

  /** `endsAt`: ms since the epoch. */
  constructor(private readonly endsAt: number) {}

  race<T>(promise: Promise<T>, what: string): Promise<T> {
    this.step = what;
    promise.catch(() => undefined);
    if (!this.expiry) {
      this.expiry = new Promise<never>((_, reject) => {
        this.timer = setTimeout(
          () =>
            reject(
              new ServiceUnavailableError(`${this.step} did not answer in time`, REDIS_RETRY_AFTER_SECONDS),
            ),
          Math.max(0, this.endsAt - Date.now()),
        );
      });
      this.expiry.catch(() => undefined);
    }
    return Promise.race([promise, this.expiry]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
