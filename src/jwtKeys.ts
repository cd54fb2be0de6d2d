import {
  createPrivateKey,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Asymmetric signing keys for access tokens (`JWT_KEYS_FILE`, `JWT_ACTIVE_KID`): a JWKS file
 * `{"keys": [...]}` whose keys each carry a `kid`. The active key (private) signs; every key in the
 * file verifies, so a retired key keeps verifying the tokens it signed until it is removed.
 *
 * The algorithm of each key is fixed here, from its type (P-256 → ES256, Ed25519 → EdDSA, RSA ≥
 * 2048 bits → RS256); a stated `alg` must agree. A token's header only selects a key by `kid`; its
 * `alg` must then be that key's, so `alg` is never taken from the token alone.
 */
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/** What a `kid` may look like (it is echoed in token headers and the published JWKS). */
const KID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const MIN_RSA_BITS = 2048;

export interface JwtKey {
  readonly kid: string;
  readonly alg: AsymmetricAlgorithm;
  readonly publicKey: KeyObject;
  /** Absent for a verify-only key (a public JWK in the file). */
  readonly privateKey: KeyObject | undefined;
  /** The public JWK as published: derived from the key object, so it can hold no private part. */
  readonly publicJwk: Readonly<Record<string, string>>;
}

export interface JwtKeySet {
  /** The `kid` of the key that signs new tokens. */
  readonly activeKid: string;
  /** Every key that verifies, by `kid`. */
  readonly keys: ReadonlyMap<string, JwtKey>;
}

/** The key file is unusable; the message never contains key material. */
export class JwtKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtKeyError';
  }
}

function algorithmOf(jwk: Record<string, unknown>, where: string): AsymmetricAlgorithm {
  let expected: AsymmetricAlgorithm;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') expected = 'ES256';
  else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') expected = 'EdDSA';
  else if (jwk.kty === 'RSA') expected = 'RS256';
  else {
    throw new JwtKeyError(`${where}: unsupported key type (use EC P-256, OKP Ed25519 or RSA)`);
  }
  if (jwk.alg !== undefined && jwk.alg !== expected) {
    throw new JwtKeyError(
      `${where}: alg ${JSON.stringify(jwk.alg)} does not match the key type (expected ${expected})`,
    );
  }
  return expected;
}

/** JWK members that are private (RFC 7518 §6); everything else is public. */
const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);
const PROBE = Buffer.from('maihive jwt key check');

function publicMembers(jwk: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE_MEMBERS.has(name)));
}

function parseKey(value: unknown, index: number): JwtKey {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JwtKeyError(`keys[${index}] is not a JWK object`);
  }
  const jwk = value as Record<string, unknown>;
  const kid = jwk.kid;
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) {
    throw new JwtKeyError(`keys[${index}] needs a kid matching ${KID_PATTERN.source}`);
  }
  const where = `key ${kid}`;
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new JwtKeyError(`${where}: use must be sig`);
  const alg = algorithmOf(jwk, where);
  let privateKey: KeyObject | undefined;
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: publicMembers(jwk) as JsonWebKey, format: 'jwk' });
    if (jwk.d !== undefined) {
      privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
      // The private and public members must be one key pair, or tokens would never verify.
      const digest = alg === 'EdDSA' ? null : 'sha256';
      if (!verify(digest, PROBE, publicKey, sign(digest, PROBE, privateKey))) throw new Error('mismatch');
    }
  } catch {
    // The crypto error could quote parts of the key; say only which key failed.
    throw new JwtKeyError(`${where}: not a valid ${alg} key pair`);
  }
  if (alg === 'RS256' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new JwtKeyError(`${where}: RSA keys need at least ${MIN_RSA_BITS} bits`);
  }
  const exported = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const publicJwk = Object.freeze({ ...exported, kid, alg, use: 'sig' });
  return Object.freeze({ kid, alg, publicKey, privateKey, publicJwk });
}

/**
 * Validates a parsed JWKS document and picks the active key: `activeKid`, or the only key when the
 * file holds one. Throws `JwtKeyError` for anything unusable.
 */
export function parseJwtKeySet(document: unknown, activeKid: string | undefined): JwtKeySet {
  const list = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) {
    throw new JwtKeyError('expected a JWKS document {"keys": [...]} with at least one key');
  }
  const keys = new Map<string, JwtKey>();
  list.forEach((value, index) => {
    const key = parseKey(value, index);
    if (keys.has(key.kid)) throw new JwtKeyError(`kid ${key.kid} appears twice`);
    keys.set(key.kid, key);
  });
  const active = activeKid ?? (keys.size === 1 ? [...keys.keys()][0] : undefined);
  if (active === undefined) throw new JwtKeyError('JWT_ACTIVE_KID must name the signing key');
  const signing = keys.get(active);
  if (!signing) throw new JwtKeyError(`the active kid ${active} is not in the file`);
  if (!signing.privateKey) throw new JwtKeyError(`the active key ${active} has no private part`);
  return Object.freeze({ activeKid: active, keys });
}

/** Reads and validates the key file (synchronously: it runs once, while the config is parsed). */
export function readJwtKeySet(path: string, activeKid: string | undefined): JwtKeySet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new JwtKeyError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error, which may be key material.
    throw new JwtKeyError(`${path} is not valid JSON`);
  }
  return parseJwtKeySet(document, activeKid);
}

/** The public half of every key, as `GET /auth/jwks.json` serves it. */
export function publicJwks(set: JwtKeySet): { keys: Readonly<Record<string, string>>[] } {
  return { keys: [...set.keys.values()].map((k) => k.publicJwk) };
}
