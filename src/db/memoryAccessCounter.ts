import { createIsolationContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import type { Database } from './database';
import { touchMemories } from './repositories/memorySearch';

/**
 * Access counts of searches, written off the request's path: `count` returns at once, and each
 * tenant has at most one write in flight, which takes every access counted meanwhile in one
 * statement (`touchMemories`, without waiting for the WAL flush: an access count lost to a crash
 * is harmless). A search's response therefore never waits for its bookkeeping (an UPDATE of ten
 * rows recomputes their generated search columns and commits: a third of a search's time over
 * HTTP before), and a burst of searches costs one write per tenant, not one per search.
 */
export class MemoryAccessCounter {
  private readonly pending = new Map<string, Map<string, number>>();
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
  ) {}

  /** One access of each memory (of `tenantId`), written soon. */
  count(tenantId: string, memoryIds: readonly string[]): void {
    if (memoryIds.length === 0) return;
    let counts = this.pending.get(tenantId);
    if (!counts) this.pending.set(tenantId, (counts = new Map<string, number>()));
    for (const id of memoryIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    if (!this.writing.has(tenantId)) this.writing.set(tenantId, this.write(tenantId));
  }

  private async write(tenantId: string): Promise<void> {
    // Let the searches of this turn of the event loop add theirs first.
    await new Promise((resolve) => setImmediate(resolve));
    for (let counts = this.pending.get(tenantId); counts; counts = this.pending.get(tenantId)) {
      this.pending.delete(tenantId);
      try {
        // BEGIN, the UPDATE and COMMIT in one round trip (was BEGIN, SET LOCAL, the UPDATE, COMMIT: four).
        await this.db.withTenantAtOnce(
          createIsolationContext({ tenantId }),
          (db) => touchMemories(db, counts),
          {
            synchronousCommit: false,
          },
        );
      } catch (err) {
        this.logger.warn({ err, tenant_id: tenantId }, 'memory access counts not written');
      }
    }
    this.writing.delete(tenantId);
  }

  /** Resolves when every access counted so far is written (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.writing.size > 0) await Promise.all(this.writing.values());
  }
}
