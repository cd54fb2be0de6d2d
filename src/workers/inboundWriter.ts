import type { Database } from '../db/database';
import { type InboundMessage, storeInbound } from '../db/repositories/heartflow';
import { createIsolationContext } from '../domain/isolationContext';

interface Pending {
  item: InboundMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface TenantBatch {
  pending: Pending[];
  flushing: boolean;
}

/** Most messages stored in one statement. */
const MAX_BATCH = 200;

/**
 * Group commit of inbound messages, per tenant and process: a message is written at once when
 * nothing of its tenant is being written, else with everything of the tenant that arrived
 * meanwhile, in the next unit of work. A lone message (a quiet tenant) waits for nothing; a
 * flood's messages cost one transaction per batch instead of one each, which is what keeps a
 * flood from crowding PostgreSQL. `store` resolves once the message is committed.
 *
 * A batch that fails is written again one message at a time, so one bad message (a stream that
 * belongs to another agent) fails only its own job.
 */
export class InboundWriter {
  private readonly tenants = new Map<string, TenantBatch>();

  constructor(private readonly db: Database) {}

  store(tenantId: string, item: InboundMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.tenants.get(tenantId);
      if (!batch) this.tenants.set(tenantId, (batch = { pending: [], flushing: false }));
      batch.pending.push({ item, resolve, reject });
      if (!batch.flushing) void this.flush(tenantId, batch);
    });
  }

  private async flush(tenantId: string, batch: TenantBatch): Promise<void> {
    batch.flushing = true;
    try {
      while (batch.pending.length > 0) {
        const taken = batch.pending.splice(0, MAX_BATCH);
        try {
          await this.write(
            tenantId,
            taken.map((p) => p.item),
          );
          for (const p of taken) p.resolve();
        } catch (err) {
          if (taken.length === 1) taken[0]!.reject(err);
          else await this.writeEach(tenantId, taken);
        }
      }
    } finally {
      batch.flushing = false;
      if (batch.pending.length === 0 && this.tenants.get(tenantId) === batch) this.tenants.delete(tenantId);
    }
  }

  private async writeEach(tenantId: string, taken: Pending[]): Promise<void> {
    for (const p of taken) {
      try {
        await this.write(tenantId, [p.item]);
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    }
  }

  private write(tenantId: string, items: InboundMessage[]): Promise<void> {
    return this.db.withTenantAtOnce(createIsolationContext({ tenantId }), (db) => storeInbound(db, items));
  }
}
