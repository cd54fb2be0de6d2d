import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (scheme `v1`).
 *
 * Every delivery carries
 *   X-MaiHive-Timestamp: <unix seconds when this attempt was sent>
 *   X-MaiHive-Signature: v1=<hex HMAC-SHA256(webhook_secret, "<timestamp>.<raw body>")>
 * The body is signed byte for byte as sent, so a receiver must verify the raw request body before
 * parsing it. To verify: read both headers, recompute the HMAC over `timestamp + "." + body` with
 * the agent's `webhook_secret`, compare in constant time with any `v1=` entry of the signature
 * header (several, comma-separated, may appear while a secret is rotated), and reject a timestamp
 * further than the tolerance (default 300 s) from the receiver's clock: a captured request cannot
 * be replayed later, and within the window the `X-MaiHive-Delivery` id (the message id) lets the
 * receiver drop duplicates. `verifyWebhookSignature` below is that procedure.
 */

export const TIMESTAMP_HEADER = 'X-MaiHive-Timestamp';
export const SIGNATURE_HEADER = 'X-MaiHive-Signature';
export const SIGNATURE_VERSION = 'v1';
/** Largest accepted distance between the signed timestamp and the verifier's clock, s. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/** The `X-MaiHive-Signature` value of a body sent at `timestampSeconds`. */
export function signWebhook(secret: string, body: string, timestampSeconds: number): string {
  return `${SIGNATURE_VERSION}=${hmacHex(secret, String(Math.trunc(timestampSeconds)), body)}`;
}

/** Both headers for a body sent now (`nowMs`). */
export function webhookSignatureHeaders(secret: string, body: string, nowMs: number): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  return { [TIMESTAMP_HEADER]: String(ts), [SIGNATURE_HEADER]: signWebhook(secret, body, ts) };
}

export type VerifyResult =
  { ok: true } | { ok: false; reason: 'missing_header' | 'malformed' | 'expired' | 'mismatch' };

export interface VerifyInput {
  /** The agent's webhook secret, or several while rotating (any may match). */
  secret: string | readonly string[];
  /** The raw request body, exactly as received. */
  body: string;
  timestampHeader: string | undefined | null;
  signatureHeader: string | undefined | null;
  /** The verifier's clock, ms since the epoch. */
  nowMs: number;
  /** Default 300. */
  toleranceSeconds?: number;
}

/** Checks a delivery as a receiver would: header shape, freshness, then the HMAC in constant time. */
export function verifyWebhookSignature(v: VerifyInput): VerifyResult {
  if (!v.timestampHeader || !v.signatureHeader) return { ok: false, reason: 'missing_header' };
  if (!/^\d{1,12}$/.test(v.timestampHeader)) return { ok: false, reason: 'malformed' };
  const given = v.signatureHeader
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${SIGNATURE_VERSION}=`))
    .map((part) => part.slice(SIGNATURE_VERSION.length + 1));
  if (given.length === 0 || given.some((g) => !/^[0-9a-f]{64}$/.test(g))) {
    return { ok: false, reason: 'malformed' };
  }
  const tolerance = v.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(Math.floor(v.nowMs / 1000) - Number(v.timestampHeader)) > tolerance) {
    return { ok: false, reason: 'expired' };
  }
  const secrets = typeof v.secret === 'string' ? [v.secret] : v.secret;
  for (const secret of secrets) {
    const expected = Buffer.from(hmacHex(secret, v.timestampHeader, v.body), 'hex');
    for (const g of given) {
      if (timingSafeEqual(expected, Buffer.from(g, 'hex'))) return { ok: true };
    }
  }
  return { ok: false, reason: 'mismatch' };
}
