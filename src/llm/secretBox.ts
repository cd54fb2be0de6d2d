import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

import { MaiHiveError } from '../errors';

/** A stored secret cannot be opened: tampered with, truncated, or sealed under another server key. */
export class SecretUnreadableError extends MaiHiveError {
  readonly code = 'SECRET_UNREADABLE';
  readonly status = 500;
}

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function checkKey(key: Buffer): Buffer {
  if (key.length !== KEY_BYTES)
    throw new RangeError(`a SecretBox key has ${KEY_BYTES} bytes, got ${key.length}`);
  return Buffer.from(key);
}

/**
 * Seals stored secrets (agents' LLM API keys and webhook secrets) with a server key: AES-256-GCM, a fresh 96-bit IV
 * per secret, format `v1:<iv>:<tag>:<ciphertext>` in base64url. GCM's tag makes any change to the
 * stored text (or the wrong key) fail loudly instead of yielding garbage. `previousKeys` still open
 * secrets sealed before a key rotation; new ones are always sealed with the current key.
 */
export class SecretBox {
  private readonly key: Buffer;
  private readonly openKeys: readonly Buffer[];

  /** `key`: exactly 32 bytes. `previousKeys`: older 32-byte keys, tried after `key` when opening. */
  constructor(key: Buffer, previousKeys: readonly Buffer[] = []) {
    this.key = checkKey(key);
    this.openKeys = [this.key, ...previousKeys.map(checkKey)];
  }

  /**
   * A box keyed from a configured secret string of at least 32 bytes (e.g. an environment
   * variable), stretched with HKDF-SHA256 so any such string gives a full-strength key.
   */
  static fromSecret(secret: string, previousSecrets: readonly string[] = []): SecretBox {
    return new SecretBox(deriveKey(secret), previousSecrets.map(deriveKey));
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, iv, tag, ciphertext]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join(':');
  }

  /** Throws `SecretUnreadableError` when the text is malformed, altered, or sealed under an unknown key. */
  decrypt(sealed: string): string {
    return this.open(sealed).plaintext;
  }

  /**
   * The secret sealed under the current key when it was sealed under a previous one (key
   * rotation), else undefined. Throws `SecretUnreadableError` as `decrypt` does.
   */
  reseal(sealed: string): string | undefined {
    const { plaintext, keyIndex } = this.open(sealed);
    return keyIndex === 0 ? undefined : this.encrypt(plaintext);
  }

  private open(sealed: string): { plaintext: string; keyIndex: number } {
    const parts = sealed.split(':');
    if (parts.length !== 4 || parts[0] !== VERSION || !parts.slice(1).every((p) => BASE64URL.test(p))) {
      throw new SecretUnreadableError('not a v1 sealed secret');
    }
    const [iv, tag, ciphertext] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [
      Buffer,
      Buffer,
      Buffer,
    ];
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new SecretUnreadableError('sealed secret has a malformed iv or tag');
    }
    for (const [keyIndex, key] of this.openKeys.entries()) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAuthTag(tag);
        const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
        return { plaintext, keyIndex };
      } catch {
        // Wrong key or altered text: GCM cannot tell them apart; try the next key.
      }
    }
    throw new SecretUnreadableError(
      'sealed secret failed authentication (altered, or sealed under another key)',
    );
  }
}

function deriveKey(secret: string): Buffer {
  const material = Buffer.from(secret, 'utf8');
  if (material.length < KEY_BYTES) {
    throw new RangeError(`a SecretBox secret needs at least ${KEY_BYTES} bytes, got ${material.length}`);
  }
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'maihive secret box v1', KEY_BYTES));
}
