import { createHash } from 'node:crypto';

import pg from 'pg';

import type { IsolationContext } from '../domain/isolationContext';
import { ServiceUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { mapDatabaseError } from './errors';
import { FairSemaphore } from './fairSemaphore';
import { checkRawSql } from './rawSqlGuard';

/** Something that runs SQL: a pooled client inside a unit of work. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** The handle a tenant unit of work hands to repository functions. */
export interface TenantDb extends Queryable {
  readonly ctx: IsolationContext;
  /** The seed's `raw_sql`: parsed and checked first (see `rawSqlGuard.ts`), then run under RLS. */
  rawSql<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** The handle of a platform-level unit of work (tenants, platform users). */
export type PlatformDb = Queryable;

export interface DatabaseOptions {
  /** Connection string of the application role. */
  url: string;
  /** Pool size. */
  poolMax: number;
  /** Most of the pool's connections one tenant holds at once. Default `poolMax` (no cap). */
  poolMaxPerTenant?: number;
  /** ms to wait for a connection before failing with `ServiceUnavailableError`. */
  connectTimeoutMs: number;
  /** Statement timeout inside units of work, ms. */
  statementTimeoutMs: number;
  logger: Logger;
  /** Shown in pg_stat_activity. Default `maihive`. */
  applicationName?: string;
}

/** What a unit at once runs under besides its isolation settings. */
export interface AtOnceOptions {
  /** `BEGIN READ ONLY`: a write (or a row lock) fails with "read-only transaction". Default false. */
  readOnly?: boolean;
  /**
   * false: `COMMIT` returns before the WAL reaches the disk (`synchronous_commit` off for the unit;
   * the WAL writer flushes it within `3 × wal_writer_delay`, 600 ms by default). For writes a crash
   * of PostgreSQL may lose (access counts), or ones a later synchronous commit makes durable before
   * anything depends on them: the WAL is flushed in order, so a synchronous `COMMIT` flushes every
   * earlier asynchronous one with it. Visibility is unchanged: other sessions see the commit at
   * once. Default true.
   */
  synchronousCommit?: boolean;
}

/**
 * ms a query may go without an answer beyond the statement timeout before the client gives up on
 * the connection. The server cancels a slow statement itself at `statementTimeoutMs` (a clean
 * error); this only fires when the server does not answer at all (stopped, partitioned, stalled),
 * so that a request gets 503 in bounded time instead of hanging until TCP notices.
 */
export const QUERY_TIMEOUT_GRACE_MS = 1000;

/** The client-side timeout pg raises for a query without an answer (`query_timeout`). */
function isQueryReadTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Query read timeout';
}

/**
 * Names of prepared statements by SQL text. The application's statements are a fixed set (the
 * repositories' SQL), so each is parsed and planned once per connection instead of on every
 * execution; statements that come from outside (`rawSql`) are never prepared by name.
 */
const statementNames = new Map<string, string>();
const MAX_STATEMENT_NAMES = 2000;

function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    // A runaway set of texts (a caller building SQL per call) falls back to unnamed statements.
    if (statementNames.size >= MAX_STATEMENT_NAMES) return undefined;
    name = `mh_${createHash('sha1').update(text).digest('base64url')}`;
    statementNames.set(text, name);
  }
  return name;
}

/** How a handle sends one statement: `name` set for the application's own (kept prepared). */
type Send = <R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] | undefined,
  name: string | undefined,
) => Promise<pg.QueryResult<R>>;

/** A unit-of-work handle that refuses to run once its unit has ended. */
class TransactionHandle implements Queryable {
  private open = true;

  constructor(private readonly send: Send) {}

  query<R extends pg.QueryResultRow>(text: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    return this.run<R>(text, params, statementName(text));
  }

  /** A statement that is not one of the application's own: run unnamed, never kept prepared. */
  queryUnprepared<R extends pg.QueryResultRow>(
    text: string,
    params?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.run<R>(text, params, undefined);
  }

  end(): void {
    this.open = false;
  }

  private run<R extends pg.QueryResultRow>(
    text: string,
    params: readonly unknown[] | undefined,
    name: string | undefined,
  ): Promise<pg.QueryResult<R>> {
    if (!this.open) {
      return Promise.reject(new Error('this unit of work has ended; its database handle cannot be reused'));
    }
    return this.send<R>(text, params as unknown[] | undefined, name);
  }
}

/** Statements of a transaction: one round trip each, inside the unit's BEGIN … COMMIT. */
function sendOn(client: pg.PoolClient): Send {
  return <R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] | undefined,
    name: string | undefined,
  ) => (name === undefined ? client.query<R>(text, values) : client.query<R>({ name, text, values }));
}

class TenantHandle extends TransactionHandle implements TenantDb {
  constructor(
    send: Send,
    readonly ctx: IsolationContext,
  ) {
    super(send);
  }

  async rawSql<R extends pg.QueryResultRow>(text: string, params: readonly unknown[] = []) {
    await checkRawSql(this.ctx, text, params);
    return this.queryUnprepared<R>(text, params);
  }
}

/**
 * `BEGIN` plus every isolation setting and the statement timeout in one round trip. Values are
 * validated identifiers, quoted anyway. `READ ONLY` is part of `BEGIN` itself, so it is in force
 * before the settings statement or any other takes a snapshot.
 */
function beginSql(settings: Record<string, string>, statementTimeoutMs: number, readOnly = false): string {
  const all = { ...settings, statement_timeout: String(Math.trunc(statementTimeoutMs)) };
  const sets = Object.entries(all)
    .map(([name, value]) => `set_config(${pg.escapeLiteral(name)}, ${pg.escapeLiteral(value)}, true)`)
    .join(', ');
  return `BEGIN${readOnly ? ' READ ONLY' : ''}; SELECT ${sets}`;
}

/** A tenant unit's settings: its isolation context, and `synchronous_commit` when turned off. */
function tenantSettings(
  ctx: IsolationContext,
  o: Pick<AtOnceOptions, 'synchronousCommit'>,
): Record<string, string> {
  return {
    'app.tenant_id': ctx.tenantId,
    'app.agent_id': ctx.agentId ?? '',
    'app.platform': ctx.platform ?? '',
    'app.chat_stream_id': ctx.chatStreamId ?? '',
    'app.platform_access': '',
    ...(o.synchronousCommit === false ? { synchronous_commit: 'off' } : {}),
  };
}

/** Waits for a unit's `COMMIT`s; one that failed leaves the connection unusable. */
async function settle(
  commits: readonly Promise<pg.QueryResult>[],
  broken: (err: Error) => void,
): Promise<{ error?: Error; rolledBack: boolean }> {
  let error: Error | undefined;
  let rolledBack = false;
  for (const commit of commits) {
    try {
      if ((await commit).command === 'ROLLBACK') rolledBack = true;
    } catch (err) {
      error ??= err instanceof Error ? err : new Error(String(err));
      broken(error);
    }
  }
  return { error, rolledBack };
}

/** A unit whose callback caught a failed statement's error: its transaction rolled back all the same. */
const CAUGHT_FAILURE = 'unit of work rolled back: a statement in it failed and its error was caught';

const PLATFORM_SETTINGS = {
  'app.tenant_id': '',
  'app.agent_id': '',
  'app.platform': '',
  'app.chat_stream_id': '',
  'app.platform_access': 'on',
};

/**
 * The two ways to reach PostgreSQL: `withTenant` (every tenant table, under RLS) and `withPlatform`
 * (the platform tables). Both take one pooled client, run the callback in a transaction whose
 * settings are `SET LOCAL` (so they vanish at COMMIT/ROLLBACK, safe with any pool or PgBouncer in
 * transaction mode), and always release the client.
 */
export class Database {
  readonly pool: pg.Pool;
  private readonly logger: Logger;
  private readonly statementTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  /**
   * Checkouts of the pool's connections, served round-robin by tenant when they are short (the
   * platform's units count as one more "tenant"), instead of pg-pool's first come, first served,
   * and at most `poolMaxPerTenant` held by one tenant at once.
   */
  private readonly checkouts: FairSemaphore;
  private closed = false;

  constructor(options: DatabaseOptions) {
    this.logger = options.logger;
    this.statementTimeoutMs = options.statementTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.checkouts = new FairSemaphore(
      options.poolMax,
      Math.min(options.poolMax, options.poolMaxPerTenant ?? options.poolMax),
    );
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolMax,
      connectionTimeoutMillis: options.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      query_timeout: options.statementTimeoutMs + QUERY_TIMEOUT_GRACE_MS,
      // Lets the OS notice a peer that vanished while a pooled connection sat idle.
      keepAlive: true,
      application_name: options.applicationName ?? 'maihive',
      // A unit of work's statements are written as soon as they are issued, each behind the last
      // (pg's pipeline mode, which keeps their order and gives each its own answer): `BEGIN` and
      // the settings go out with the first statement instead of a round trip of their own, and
      // statements a repository issues together cost one round trip.
      pipeline: true,
    });
    // An idle client losing its server must not crash the process; the next checkout reconnects.
    this.pool.on('error', (err) => this.logger.warn({ err }, 'idle PostgreSQL client failed'));
    // Nor one that is checked out (pg-pool listens only while a client is idle): a server restart
    // or a terminated backend between two queries of a transaction would otherwise be an unhandled
    // 'error' event. The transaction's next query fails instead, and the client is discarded.
    this.pool.on('connect', (client) => {
      client.on('error', (err) => this.logger.warn({ err }, 'PostgreSQL connection lost while in use'));
    });
  }

  /**
   * A tenant unit of work: one transaction under the tenant's isolation settings and row-level
   * security. `synchronousCommit: false` lets its `COMMIT` return before the WAL reaches the disk
   * (as `withTenantAtOnce`'s option).
   */
  withTenant<T>(
    ctx: IsolationContext,
    fn: (db: TenantDb) => Promise<T>,
    o: Pick<AtOnceOptions, 'synchronousCommit'> = {},
  ): Promise<T> {
    return this.unitOfWork<TenantHandle, T>(
      ctx.tenantId,
      tenantSettings(ctx, o),
      (client) => new TenantHandle(sendOn(client), ctx),
      fn,
    );
  }

  /**
   * A tenant unit of work whose statements are all issued together (one statement, or several
   * without awaiting in between): `BEGIN` with the settings, the statements and `COMMIT` go out at
   * once, a single round trip in all. A statement issued after `fn` awaited once its first was
   * written fails ("this unit of work has ended"), and `fn` cannot roll back by throwing once its
   * statements are written: a failed statement still rolls the unit back, and its error is what
   * this rejects with. A unit that issues no statement costs no round trip. Isolation as
   * `withTenant`'s: the same settings, row-level security, gone at `COMMIT`.
   */
  withTenantAtOnce<T>(
    ctx: IsolationContext,
    fn: (db: TenantDb) => Promise<T>,
    o: AtOnceOptions = {},
  ): Promise<T> {
    return this.atOnceUnit(ctx, fn, o, false);
  }

  /**
   * A tenant unit of work that only reads: `withTenantAtOnce(ctx, fn, { readOnly: true })`, except
   * that a statement issued after `fn` awaited is not refused but starts another read-only unit at
   * once (`BEGIN`, the statements issued with it, `COMMIT`: one more round trip). For reads whose
   * next statement depends on the last one's answer (a search seen from a chat stream, a listing's
   * page past the end): one round trip per step, where `withTenant` costs one more in all. Each step
   * sees the data committed when it starts, as each statement of `withTenant`'s READ COMMITTED
   * transaction does; what is lost is one transaction around the steps: a lock or a write fails with
   * "read-only transaction", and `SET LOCAL` lasts one step.
   */
  readTenant<T>(ctx: IsolationContext, fn: (db: TenantDb) => Promise<T>): Promise<T> {
    return this.atOnceUnit(ctx, fn, { readOnly: true }, true);
  }

  /**
   * The unit of `withTenantAtOnce` and `readTenant`. A step opens with the first statement issued
   * while none is open (`BEGIN` and the settings are written right before it) and ends once the code
   * that issued it yields (a microtask queued then writes `COMMIT`), so the statements issued
   * together are written between the two, one round trip in pipeline mode. Only `steps` allows a
   * second step; the connection goes back to the pool once every step has answered.
   */
  private atOnceUnit<T>(
    ctx: IsolationContext,
    fn: (db: TenantDb) => Promise<T>,
    o: AtOnceOptions,
    steps: boolean,
  ): Promise<T> {
    const begin = beginSql(tenantSettings(ctx, o), this.statementTimeoutMs, o.readOnly);
    return this.withConnection(ctx.tenantId, async (client, broken) => {
      const send = sendOn(client);
      const commits: Promise<pg.QueryResult>[] = [];
      let open: { begun: Promise<unknown> } | undefined;
      let opened = 0;
      const end = (step: typeof open) => {
        if (open !== step || !step) return;
        open = undefined;
        const commit = client.query('COMMIT');
        commit.catch(() => undefined); // awaited below
        commits.push(commit);
      };
      const handle = new TenantHandle(
        <R extends pg.QueryResultRow>(
          text: string,
          values: unknown[] | undefined,
          name: string | undefined,
        ) => {
          let step = open;
          if (!step) {
            if (opened > 0 && !steps) {
              return Promise.reject(
                new Error(
                  'this unit of work has ended: a unit at once runs only the statements issued together',
                ),
              );
            }
            opened += 1;
            const begun = client.query(begin);
            begun.catch(() => undefined); // the statements behind it fail with it
            const opening = (step = open = { begun });
            queueMicrotask(() => end(opening));
          }
          const result = send<R>(text, values, name);
          result.catch(() => undefined); // returned below
          // Should `BEGIN` fail, so does every statement behind it: reject with `BEGIN`'s error.
          return step.begun.then(() => result);
        },
        ctx,
      );
      let value: T;
      try {
        value = await fn(handle);
      } catch (err) {
        handle.end();
        end(open);
        // After a read timeout the `COMMIT`s wait behind the unanswered query; withConnection
        // destroys the connection instead.
        if (!isQueryReadTimeout(err)) await settle(commits, broken);
        throw err;
      }
      handle.end();
      end(open);
      const answers = await settle(commits, broken);
      if (answers.error) throw answers.error;
      // A statement that failed inside `fn` aborts its step even when `fn` caught the error;
      // PostgreSQL then answers `COMMIT` with `ROLLBACK` instead of an error.
      if (answers.rolledBack) {
        throw new Error(CAUGHT_FAILURE);
      }
      return value;
    });
  }

  withPlatform<T>(fn: (db: PlatformDb) => Promise<T>): Promise<T> {
    return this.unitOfWork<TransactionHandle, T>(
      '',
      PLATFORM_SETTINGS,
      (client) => new TransactionHandle(sendOn(client)),
      fn,
    );
  }

  /** The seed's scoped `raw_sql`, in a unit of work of its own. */
  rawSql<R extends pg.QueryResultRow = pg.QueryResultRow>(
    ctx: IsolationContext,
    text: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    return this.withTenant(ctx, (db) => db.rawSql<R>(text, params));
  }

  /** Cheap liveness probe for /health and /ready. */
  async ping(): Promise<void> {
    await this.withPlatform((db) => db.query('SELECT 1'));
  }

  /** Highest applied migration (the table is readable, not writable, by the application role). */
  async schemaVersion(): Promise<number> {
    const { rows } = await this.withPlatform((db) =>
      db.query<{ version: string | null }>('SELECT max(version)::text AS version FROM schemaversion'),
    );
    return Number(rows[0]?.version ?? 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** Waiters and free connections of the pool's fair checkout (metrics, tests). */
  checkoutSnapshot() {
    return this.checkouts.snapshot();
  }

  /** A permit for one of the pool's connections, in `key`'s turn when they are short. */
  private async permit(key: string): Promise<() => void> {
    const now = this.checkouts.tryAcquire(key);
    if (now) return now;
    const timeout = AbortSignal.timeout(this.connectTimeoutMs);
    try {
      return await this.checkouts.acquire(key, timeout);
    } catch (err) {
      if (!timeout.aborted) throw err;
      throw new ServiceUnavailableError('database busy: no connection free in time', 5, { cause: err });
    }
  }

  /**
   * One of the pool's connections for `fn`, in `key`'s turn, always given back: destroyed when
   * `fn` reports it unusable (`broken`) or when the server stopped answering a query.
   */
  private async withConnection<T>(
    key: string,
    fn: (client: pg.PoolClient, broken: (err: Error) => void) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new ServiceUnavailableError('database is shutting down');
    const releasePermit = await this.permit(key);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      releasePermit();
      throw mapDatabaseError(err);
    }
    let unusable: Error | undefined;
    try {
      return await fn(client, (err) => (unusable = err));
    } catch (err) {
      // The server stopped answering: the connection still waits for that answer. Destroy it; the
      // server ends the transaction itself.
      if (isQueryReadTimeout(err)) unusable = err as Error;
      throw mapDatabaseError(err);
    } finally {
      client.release(unusable);
      releasePermit();
    }
  }

  private unitOfWork<H extends TransactionHandle, T>(
    key: string,
    settings: Record<string, string>,
    makeHandle: (client: pg.PoolClient) => H,
    fn: (db: H) => Promise<T>,
  ): Promise<T> {
    return this.withConnection(key, async (client, broken) => {
      const handle = makeHandle(client);
      try {
        // Not awaited before `fn`: its first statement is written right behind it (pipeline mode).
        // Should `BEGIN` fail, so does every statement behind it, and nothing commits.
        const begun = client.query(beginSql(settings, this.statementTimeoutMs));
        begun.catch(() => undefined); // awaited below; `fn` may fail first
        const result = await fn(handle);
        await begun;
        handle.end();
        const commit = await client.query('COMMIT');
        // A statement that failed inside the callback aborts the transaction even when the callback
        // caught its error; PostgreSQL then answers COMMIT with ROLLBACK instead of an error.
        if (commit.command === 'ROLLBACK') {
          throw new Error(CAUGHT_FAILURE);
        }
        return result;
      } catch (err) {
        handle.end();
        // After a read timeout a ROLLBACK would wait behind the unanswered query for another
        // timeout; withConnection destroys the connection instead.
        if (isQueryReadTimeout(err)) throw err;
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable; destroy it rather than return it to the pool.
          broken(rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr)));
        }
        throw err;
      }
    });
  }
}
