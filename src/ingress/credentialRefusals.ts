import { createHash } from 'node:crypto';

/** Most credentials remembered at once (oldest dropped beyond it). */
const DEFAULT_MAX_ENTRIES = 10_000;

/** A send refused for rate, as its 429 said: which bucket, at what rate, until when. */
export interface CredentialRefusal {
  limit: 'tenant' | 'credential';
  ratePerSecond: number | undefined;
  /** ms until the bucket can give a token again (≥ 1). */
  waitMs: number;
  /** The credential's tenant, for the refusal's log line (`RefusalLog`). */
  tenantId?: string | undefined;
}

/**
 * The credentials (API key or bearer token, by a digest of the header that carries it) whose last
 * send this process refused because a rate bucket of theirs was empty, until that bucket refills:
 * `RateRefusals` remembered the same bucket for the admission, but a send only reaches admission
 * after its credential was authenticated (a Redis read or two) and its body read, parsed and
 * validated. Asked before any of that, this lets a flood that its rate limit already refuses cost
 * the process a header digest and a map lookup per request. Only a refusal after a successful
 * authentication is remembered, so a header nobody authenticated with is never refused here; a key
 * revoked within the window (≤ 1 s) gets this 429 instead of a 401 until the window ends. A pure
 * core: the clock is the caller's.
 */
export class CredentialRefusals {
  private readonly until = new Map<
    string,
    { at: number; limit: CredentialRefusal['limit']; rate?: number; tenantId?: string }
  >();

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  /** The digest the refusals are keyed by (the raw credential is not kept). */
  static fingerprint(credentialHeader: string): string {
    return createHash('sha256').update(credentialHeader).digest('base64url');
  }

  refusal(fingerprint: string, now: number): CredentialRefusal | undefined {
    const entry = this.until.get(fingerprint);
    if (!entry) return undefined;
    if (entry.at <= now) {
      this.until.delete(fingerprint);
      return undefined;
    }
    return {
      limit: entry.limit,
      ratePerSecond: entry.rate,
      waitMs: entry.at - now,
      tenantId: entry.tenantId,
    };
  }

  /** Records a rate refusal of the credential: its bucket is empty for `waitMs` (capped at 1 s). */
  remember(fingerprint: string, now: number, refusal: CredentialRefusal): void {
    if (!(refusal.waitMs > 0)) return;
    this.until.delete(fingerprint);
    if (this.until.size >= this.maxEntries) {
      for (const key of this.until.keys()) {
        if (this.until.size < this.maxEntries) break;
        this.until.delete(key);
      }
    }
    this.until.set(fingerprint, {
      at: now + Math.min(refusal.waitMs, 1000),
      limit: refusal.limit,
      ...(refusal.ratePerSecond === undefined ? {} : { rate: refusal.ratePerSecond }),
      ...(refusal.tenantId === undefined ? {} : { tenantId: refusal.tenantId }),
    });
  }

  get size(): number {
    return this.until.size;
  }
}
