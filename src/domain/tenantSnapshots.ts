import type { Clock } from './clock';

/**
 * Something read once per tenant and kept in this process for at most `ttlMs`: a tenant's
 * configuration rows, its enabled plugins. `forget(tenantId)` (called when a change notice
 * arrives) drops the copy at once, and a read that was already under way when the notice came is
 * answered but not kept, so a change is never papered over by the value read before it. Readers
 * of one tenant at the same moment share one load. At most `maxTenants` copies (oldest dropped).
 */
export class TenantSnapshots<T> {
  private readonly snapshots = new Map<string, { value: T; expiresAt: number }>();
  private readonly loading = new Map<string, Promise<T>>();
  /** Bumped by every `forget`: a load started before it is not kept. */
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly load: (tenantId: string) => Promise<T>,
    private readonly o: { clock: Clock; ttlMs: number; maxTenants?: number },
  ) {}

  get(tenantId: string): Promise<T> {
    const now = this.o.clock.now();
    const hit = this.snapshots.get(tenantId);
    if (hit && hit.expiresAt > now) return Promise.resolve(hit.value);
    let pending = this.loading.get(tenantId);
    if (pending) return pending;
    const generation = this.generations.get(tenantId) ?? 0;
    pending = this.load(tenantId)
      .then((value) => {
        if ((this.generations.get(tenantId) ?? 0) === generation) {
          if (this.snapshots.size >= (this.o.maxTenants ?? 10_000)) {
            this.snapshots.delete(this.snapshots.keys().next().value!);
          }
          this.snapshots.set(tenantId, { value, expiresAt: now + this.o.ttlMs });
        }
        return value;
      })
      .finally(() => {
        if (this.loading.get(tenantId) === pending) this.loading.delete(tenantId);
      });
    this.loading.set(tenantId, pending);
    return pending;
  }

  /** Drops the tenant's copy (and keeps a load under way from being kept). */
  forget(tenantId: string): void {
    this.generations.set(tenantId, (this.generations.get(tenantId) ?? 0) + 1);
    this.snapshots.delete(tenantId);
    this.loading.delete(tenantId);
  }
}
