import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfig } from '../../src/config';
import { JwtKeyError, parseJwtKeySet, publicJwks, readJwtKeySet } from '../../src/jwtKeys';

type Jwk = Record<string, unknown>;

function ecJwk(kid: string): Jwk {
  return { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid };
}
function edJwk(kid: string): Jwk {
  return { ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid };
}
function rsaJwk(kid: string, modulusLength = 2048): Jwk {
  return { ...generateKeyPairSync('rsa', { modulusLength }).privateKey.export({ format: 'jwk' }), kid };
}
function publicOnly(jwk: Jwk): Jwk {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = jwk;
  return rest;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe('JWT key files', () => {
  it('pins ES256, EdDSA and RS256 from the key type and picks the only key as active', () => {
    const set = parseJwtKeySet({ keys: [ecJwk('a'), edJwk('b'), rsaJwk('c')] }, 'a');
    expect([...set.keys.values()].map((k) => [k.kid, k.alg])).toEqual([
      ['a', 'ES256'],
      ['b', 'EdDSA'],
      ['c', 'RS256'],
    ]);
    expect(set.activeKid).toBe('a');
    expect(parseJwtKeySet({ keys: [edJwk('solo')] }, undefined).activeKid).toBe('solo');
  });

  it('publishes only public members, with kid, alg and use', () => {
    const set = parseJwtKeySet({ keys: [ecJwk('a'), edJwk('b'), rsaJwk('c')] }, 'a');
    const { keys } = publicJwks(set);
    expect(keys).toHaveLength(3);
    for (const jwk of keys) {
      for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
      expect(jwk).toMatchObject({ use: 'sig' });
    }
    expect(keys.map((k) => [k.kid, k.alg, k.kty])).toEqual([
      ['a', 'ES256', 'EC'],
      ['b', 'EdDSA', 'OKP'],
      ['c', 'RS256', 'RSA'],
    ]);
  });

  it('accepts a public-only key for verification, but not as the active key', () => {
    const retired = publicOnly(ecJwk('old'));
    const set = parseJwtKeySet({ keys: [retired, ecJwk('new')] }, 'new');
    expect(set.keys.get('old')?.privateKey).toBeUndefined();
    expect(() => parseJwtKeySet({ keys: [retired, ecJwk('new')] }, 'old')).toThrow(/no private part/);
  });

  it.each([
    ['no keys', { keys: [] }, undefined, /at least one key/],
    ['not a JWKS', [ecJwk('a')], undefined, /JWKS document/],
    ['a key without kid', { keys: [{ ...ecJwk('a'), kid: undefined }] }, undefined, /needs a kid/],
    ['a duplicate kid', { keys: [ecJwk('a'), edJwk('a')] }, 'a', /appears twice/],
    [
      'an alg that contradicts the key type',
      { keys: [{ ...ecJwk('a'), alg: 'RS256' }] },
      'a',
      /does not match/,
    ],
    [
      'an HMAC key',
      { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h', alg: 'HS256' }] },
      'h',
      /unsupported key type/,
    ],
    ['another curve', { keys: [{ ...ecJwk('a'), crv: 'P-384' }] }, 'a', /unsupported key type/],
    ['an encryption key', { keys: [{ ...ecJwk('a'), use: 'enc' }] }, 'a', /use must be sig/],
    ['a short RSA key', { keys: [rsaJwk('r', 1024)] }, 'r', /at least 2048 bits/],
    ['several keys and no active kid', { keys: [ecJwk('a'), ecJwk('b')] }, undefined, /JWT_ACTIVE_KID/],
    ['an active kid that is not in the file', { keys: [ecJwk('a')] }, 'zz', /not in the file/],
    ['a broken key', { keys: [{ ...ecJwk('a'), x: 'AAAA' }] }, 'a', /not a valid ES256 key/],
    [
      'private and public halves of two keys',
      { keys: [{ ...ecJwk('a'), d: ecJwk('b').d }] },
      'a',
      /key pair/,
    ],
    ['mixed Ed25519 halves', { keys: [{ ...edJwk('a'), x: edJwk('b').x }] }, 'a', /key pair/],
  ])('refuses %s', (_name, document, activeKid, message) => {
    expect(() => parseJwtKeySet(document, activeKid)).toThrow(message);
  });

  it('reads the file and never quotes its content in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mh-jwks-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ keys: [ecJwk('a')] }));
    expect(readJwtKeySet(good, undefined).activeKid).toBe('a');

    const secretish = JSON.stringify({ keys: [ecJwk('a')] }).slice(0, -3);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, secretish);
    let caught: unknown;
    try {
      readJwtKeySet(broken, undefined);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(JwtKeyError);
    const d = (JSON.parse(`${secretish}}]}`) as { keys: [{ d: string }] }).keys[0].d;
    expect((caught as Error).message).not.toContain(d.slice(0, 8));
    expect(() => readJwtKeySet(join(dir, 'missing.json'), undefined)).toThrow(/cannot read .*ENOENT/);
  });

  it('is read by loadConfig, which names JWT_KEYS_FILE when it is unusable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mh-jwks-'));
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ keys: [ecJwk('a'), edJwk('b')] }));
    const c = loadConfig({ JWT_KEYS_FILE: file, JWT_ACTIVE_KID: 'b' });
    expect(c.jwtKeys?.activeKid).toBe('b');
    expect(loadConfig({}).jwtKeys).toBeUndefined();
    // Production needs no JWT_SECRET when it signs with keys.
    expect(
      loadConfig({ NODE_ENV: 'production', JWT_KEYS_FILE: file, JWT_ACTIVE_KID: 'a' }).jwtKeys,
    ).toBeDefined();

    let caught: unknown;
    try {
      loadConfig({ JWT_KEYS_FILE: file });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.variable)).toEqual(['JWT_KEYS_FILE']);
    expect(() => loadConfig({ JWT_ACTIVE_KID: 'a' })).toThrow(/JWT_ACTIVE_KID is set without JWT_KEYS_FILE/);
  });
});
