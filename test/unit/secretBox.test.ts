import { randomBytes } from 'node:crypto';

import { SecretBox, SecretUnreadableError } from '../../src/llm/secretBox';

const key = randomBytes(32);
const box = new SecretBox(key);

/** Flips one bit of one base64url field of a sealed secret. */
function tamper(sealed: string, field: 1 | 2 | 3): string {
  const parts = sealed.split(':');
  const bytes = Buffer.from(parts[field] ?? '', 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  parts[field] = bytes.toString('base64url');
  return parts.join(':');
}

describe('SecretBox', () => {
  it('opens what it sealed, in the v1:<iv>:<tag>:<ciphertext> base64url format', () => {
    for (const secret of ['sk-test-1234567890', '', '密钥🔑 with spaces', 'x'.repeat(5000)]) {
      const sealed = box.encrypt(secret);
      expect(sealed).toMatch(/^v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]*$/);
      expect(sealed).not.toContain(secret || '\u0000');
      expect(box.decrypt(sealed)).toBe(secret);
    }
  });

  it('seals the same secret differently each time (fresh IV)', () => {
    const a = box.encrypt('sk-same');
    const b = box.encrypt('sk-same');
    expect(a).not.toBe(b);
    expect(box.decrypt(a)).toBe(box.decrypt(b));
  });

  it.each([
    ['iv', 1],
    ['tag', 2],
    ['ciphertext', 3],
  ] as const)('detects a tampered %s', (_name, field) => {
    const sealed = box.encrypt('sk-tamper-me');
    expect(() => box.decrypt(tamper(sealed, field))).toThrow(SecretUnreadableError);
  });

  it('refuses to open a secret sealed under another key', () => {
    const sealed = new SecretBox(randomBytes(32)).encrypt('sk-other');
    expect(() => box.decrypt(sealed)).toThrow(SecretUnreadableError);
  });

  it('opens secrets sealed under a previous key after a rotation, sealing new ones with the current key', () => {
    const old = new SecretBox(key);
    const rotated = new SecretBox(randomBytes(32), [key]);
    expect(rotated.decrypt(old.encrypt('sk-before-rotation'))).toBe('sk-before-rotation');
    expect(() => old.decrypt(rotated.encrypt('sk-after'))).toThrow(SecretUnreadableError);
  });

  it('re-seals under the current key only what a previous key sealed, and refuses what none opens', () => {
    const old = new SecretBox(key);
    const current = randomBytes(32);
    const rotated = new SecretBox(current, [key]);
    const resealed = rotated.reseal(old.encrypt('sk-rotate-me'));
    expect(resealed).toBeDefined();
    expect(new SecretBox(current).decrypt(resealed!)).toBe('sk-rotate-me');
    expect(rotated.reseal(rotated.encrypt('sk-current'))).toBeUndefined();
    expect(() => rotated.reseal(new SecretBox(randomBytes(32)).encrypt('x'))).toThrow(SecretUnreadableError);
  });

  it.each([
    'sk-plaintext',
    'v2:AAAA:BBBB:CCCC',
    'v1:only:three',
    'v1:!!!!:AAAA:AAAA',
    `v1:${Buffer.alloc(8).toString('base64url')}:${Buffer.alloc(16).toString('base64url')}:AAAA`,
  ])('rejects the malformed sealed secret %p', (sealed) => {
    expect(() => box.decrypt(sealed)).toThrow(SecretUnreadableError);
  });

  it('requires a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(RangeError);
    expect(() => new SecretBox(randomBytes(32), [randomBytes(31)])).toThrow(RangeError);
  });

  it('derives the same key from the same configured secret and refuses short secrets', () => {
    const secret = 'a-configured-server-secret-of-32+-bytes';
    const sealed = SecretBox.fromSecret(secret).encrypt('sk-derived');
    expect(SecretBox.fromSecret(secret).decrypt(sealed)).toBe('sk-derived');
    expect(() => SecretBox.fromSecret(`${secret}-different`).decrypt(sealed)).toThrow(SecretUnreadableError);
    expect(() => SecretBox.fromSecret('too-short')).toThrow(RangeError);
  });
});
