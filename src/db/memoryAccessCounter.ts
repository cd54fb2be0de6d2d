import { createIsolationContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import type { Database } from './database';
import { touchMemories } from './repositories/memorySearch';

/** ms a tenant's search accesses are gathered before they are written (`MemoryAccessCounter`). */
export const ACCESS_FLUSH_MS = 1000;

/**
 * Access counts of searches, written off the request's path: `count` returns at once, and each
 * tenant's accesses are gathered for `flushMs` and then written in one statement (`touchMemories`,
 * without waiting for the WAL flush: an access count lost to a crash is harmless), at most one
 * write in flight per tenant. A search's response therefore never waits for its bookkeeping, and
 * searches share their writes: an UPDATE recomputes every updated row's generated search columns
 * and is planned and committed each time (EXPLAIN ANALYZE at 1M memories: ~5 ms fixed plus ~0.3 ms
 * a row, and a few ms of planning), which one write per search made PostgreSQL do right beside the
 * next requests. Counts show up to `flushMs` late; `drain` writes everything at once.
 */
export class MemoryAccessCounter {
  private readonly pending = new Map<string, Map<string, number>>();
  private readonly writing = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly flushMs = ACCESS_FLUSH_MS,
  ) {}

  /** One access of each memory (of `tenantId`), written within `flushMs`. */
  count(tenantId: string, memoryIds: readonly string[]): void {
    if (memoryIds.length === 0) return;
    let counts = this.pending.get(tenantId);
    if (!counts) this.pending.set(tenantId, (counts = new Map<string, number>()));
    for (const id of memoryIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    this.schedule(tenantId);
  }

  private schedule(tenantId: string): void {
    if (this.writing.has(tenantId) || this.timers.has(tenantId)) return;
    const timer = setTimeout(() => this.flush(tenantId), this.flushMs);
    // Never what keeps a process alive: shutdown drains.
    timer.unref();
    this.timers.set(tenantId, timer);
  }

  private flush(tenantId: string): void {
    clearTimeout(this.timers.get(tenantId));
    this.timers.delete(tenantId);
    if (!this.writing.has(tenantId)) this.writing.set(tenantId, this.write(tenantId));
  }

  private async write(tenantId: string): Promise<void> {
    const counts = this.pending.get(tenantId);
    this.pending.delete(tenantId);
    try {
      if (counts)
        await this.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
          await db.query('SET LOCAL synchronous_commit = off');
          await touchMemories(db, counts);
        });
    } catch (err) {
      this.logger.warn({ err, tenant_id: tenantId }, 'memory access counts not written');
    } finally {
      this.writing.delete(tenantId);
    }
    // Accesses counted during the write wait for the next round.
    if (this.pending.has(tenantId)) this.schedule(tenantId);
  }

  /** Resolves when every access counted so far is written (tests, shutdown), at once. */
  async drain(): Promise<void> {
    while (this.timers.size > 0 || this.writing.size > 0) {
      for (const tenantId of [...this.timers.keys()]) this.flush(tenantId);
      await Promise.all(this.writing.values());
    }
  }
}
