import { createHmac } from 'node:crypto';

import {
  SIGNATURE_HEADER,
  signWebhook,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
  webhookSignatureHeaders,
} from '../../src/delivery/signature';
import { classifyWebhookStatus } from '../../src/workers/deliveryProcessor';

const SECRET = 'whsec_test_0123456789';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const BODY = JSON.stringify({ event: 'message.replied', content: '你好 👋' });

function headers(secret = SECRET, body = BODY, now = NOW) {
  const h = webhookSignatureHeaders(secret, body, now);
  return { timestampHeader: h[TIMESTAMP_HEADER], signatureHeader: h[SIGNATURE_HEADER] };
}

describe('webhook signatures', () => {
  it('signs HMAC-SHA256 over "<timestamp>.<body>" as v1=<hex>', () => {
    const ts = Math.floor(NOW / 1000);
    const expected = createHmac('sha256', SECRET).update(`${ts}.${BODY}`).digest('hex');
    expect(signWebhook(SECRET, BODY, ts)).toBe(`v1=${expected}`);
    expect(headers()).toEqual({ timestampHeader: String(ts), signatureHeader: `v1=${expected}` });
  });

  it('verifies a fresh, untouched delivery', () => {
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW + 2000, ...headers() })).toEqual({
      ok: true,
    });
  });

  it('rejects a tampered body, a changed timestamp and a wrong secret', () => {
    const h = headers();
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY.replace('你好', '再见'), nowMs: NOW, ...h }),
    ).toEqual({
      ok: false,
      reason: 'mismatch',
    });
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: BODY,
        nowMs: NOW,
        ...h,
        timestampHeader: String(Number(h.timestampHeader) + 1),
      }),
    ).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature({ secret: 'other-secret', body: BODY, nowMs: NOW, ...h })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('rejects a replay outside the tolerance window, in either direction', () => {
    const h = headers();
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW + 301_000, ...h })).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW - 301_000, ...h })).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW + 50_000, toleranceSeconds: 30, ...h }),
    ).toEqual({ ok: false, reason: 'expired' });
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW + 299_000, ...h }).ok).toBe(true);
  });

  it('rejects missing and malformed headers', () => {
    const h = headers();
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW, ...h, signatureHeader: undefined }),
    ).toEqual({ ok: false, reason: 'missing_header' });
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW, ...h, timestampHeader: 'soon' }),
    ).toEqual({ ok: false, reason: 'malformed' });
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW, ...h, signatureHeader: 'v1=abc' }),
    ).toEqual({ ok: false, reason: 'malformed' });
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: BODY,
        nowMs: NOW,
        ...h,
        signatureHeader: 'v0=deadbeef',
      }),
    ).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts any of several signatures or secrets while a secret is rotated', () => {
    const h = headers();
    const old = headers('old-secret');
    const both = `${old.signatureHeader}, ${h.signatureHeader}`;
    expect(
      verifyWebhookSignature({ secret: SECRET, body: BODY, nowMs: NOW, ...h, signatureHeader: both }).ok,
    ).toBe(true);
    expect(verifyWebhookSignature({ secret: ['new-secret', SECRET], body: BODY, nowMs: NOW, ...h }).ok).toBe(
      true,
    );
  });
});

describe('webhook status classification', () => {
  it.each([
    [200, 'delivered'],
    [204, 'delivered'],
    [500, 'retry'],
    [503, 'retry'],
    [408, 'retry'],
    [429, 'retry'],
    [400, 'give_up'],
    [401, 'give_up'],
    [404, 'give_up'],
    [301, 'give_up'],
  ])('HTTP %i → %s', (status, verdict) => {
    expect(classifyWebhookStatus(status)).toBe(verdict);
  });
});
