import { CredentialRefusals } from '../../src/ingress/credentialRefusals';

describe('CredentialRefusals', () => {
  it('refuses a remembered credential until its bucket refills, then forgets it', () => {
    const r = new CredentialRefusals();
    const fp = CredentialRefusals.fingerprint('k:mh_secret');
    r.remember(fp, 1000, { limit: 'credential', ratePerSecond: 100, waitMs: 100 });
    expect(r.refusal(fp, 1050)).toEqual({ limit: 'credential', ratePerSecond: 100, waitMs: 50 });
    expect(r.refusal(fp, 1100)).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it('keys credentials by a digest of their header, never the header itself', () => {
    const fp = CredentialRefusals.fingerprint('k:mh_secret');
    expect(fp).not.toContain('mh_secret');
    expect(fp).toBe(CredentialRefusals.fingerprint('k:mh_secret'));
    expect(fp).not.toBe(CredentialRefusals.fingerprint('k:mh_secreT'));
    const r = new CredentialRefusals();
    r.remember(fp, 0, { limit: 'tenant', ratePerSecond: 5, waitMs: 300 });
    expect(r.refusal(CredentialRefusals.fingerprint('k:mh_other'), 10)).toBeUndefined();
  });

  it('holds a refusal at most a second, and ignores waits that are not positive', () => {
    const r = new CredentialRefusals();
    r.remember('a', 0, { limit: 'tenant', ratePerSecond: 1, waitMs: 60_000 });
    expect(r.refusal('a', 999)?.waitMs).toBe(1);
    expect(r.refusal('a', 1000)).toBeUndefined();
    r.remember('b', 0, { limit: 'tenant', ratePerSecond: 1, waitMs: 0 });
    r.remember('c', 0, { limit: 'tenant', ratePerSecond: 1, waitMs: Number.NaN });
    expect(r.size).toBe(0);
  });

  it('stays within its bound, dropping the oldest', () => {
    const r = new CredentialRefusals(2);
    for (const fp of ['a', 'b', 'c'])
      r.remember(fp, 0, { limit: 'credential', ratePerSecond: 1, waitMs: 500 });
    expect(r.size).toBe(2);
    expect(r.refusal('a', 1)).toBeUndefined();
    expect(r.refusal('c', 1)).toBeDefined();
  });
});
