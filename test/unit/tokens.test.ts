import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';

import { SignJWT } from 'jose';

import {
  hashSecret,
  JWT_AUDIENCE,
  JWT_ISSUER,
  makeOpaqueSecret,
  parseOpaqueSecret,
  secretMatches,
  TokenService,
} from '../../src/auth/tokens';
import { UnauthorizedError } from '../../src/errors';
import { parseJwtKeySet } from '../../src/jwtKeys';

const SECRET = 'unit-test-secret-that-is-at-least-32-bytes';
const T0 = Date.UTC(2030, 0, 1);

function service(now: () => number = () => T0, secret = SECRET) {
  return new TokenService({ secret, accessTtlSeconds: 600, now });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Claims as the server would issue them, at T0. */
function claims(overrides: Record<string, unknown> = {}) {
  const iat = Math.floor(T0 / 1000);
  return {
    sub: 'alice',
    role: 'tenant_admin',
    tenant_id: 'acme',
    jti: 'at_test',
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    iat,
    exp: iat + 600,
    ...overrides,
  };
}

async function sign(payload: Record<string, unknown>, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

describe('TokenService', () => {
  it('issues a token that verifies with every claim the contract names', async () => {
    const tokens = service();
    const { token, jti, expiresAt } = await tokens.issueAccessToken({
      sub: 'alice',
      role: 'agent',
      tenantId: 'acme',
      agentId: 'bot1',
      familyId: 'fam_1',
    });
    const verified = await tokens.verifyAccessToken(token);
    expect(verified).toMatchObject({
      sub: 'alice',
      role: 'agent',
      tenant_id: 'acme',
      agent_id: 'bot1',
      fam: 'fam_1',
      jti,
      exp: expiresAt,
      iss: JWT_ISSUER,
      aud: JWT_AUDIENCE,
    });
    expect(expiresAt - verified.iat).toBe(600);
    expect(jti).toMatch(/^at_/);
  });

  it('accepts a token signed by hand with the same secret and claims', async () => {
    await expect(service().verifyAccessToken(await sign(claims()))).resolves.toMatchObject({ sub: 'alice' });
  });

  it('rejects an expired token', async () => {
    let now = T0;
    const tokens = service(() => now);
    const { token } = await tokens.issueAccessToken({ sub: 'alice', role: 'reader', tenantId: 'acme' });
    now = T0 + 601_000;
    await expect(tokens.verifyAccessToken(token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token verified before once it expires (the verified-token cache checks exp)', async () => {
    let now = T0;
    const tokens = service(() => now);
    const { token } = await tokens.issueAccessToken({ sub: 'alice', role: 'reader', tenantId: 'acme' });
    await expect(tokens.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
    now = T0 + 599_000;
    await expect(tokens.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
    now = T0 + 600_000;
    await expect(tokens.verifyAccessToken(token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a forged signature on a token that was verified before', async () => {
    const tokens = service();
    const token = await sign(claims());
    await expect(tokens.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    await expect(tokens.verifyAccessToken(`${header}.${payload}.${flipped}`)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    const forged = `${header}.${b64(claims({ role: 'platform_admin' }))}.${signature}`;
    await expect(tokens.verifyAccessToken(forged)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token signed with alg none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    await expect(service().verifyAccessToken(token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token signed with another secret', async () => {
    const token = await sign(claims(), 'another-secret-that-is-at-least-32-bytes!');
    await expect(service().verifyAccessToken(token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token signed with the right secret but another HMAC algorithm', async () => {
    const token = await sign(claims(), SECRET, 'HS512');
    await expect(service().verifyAccessToken(token)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token without exp', async () => {
    const { exp: _exp, ...noExp } = claims();
    await expect(service().verifyAccessToken(await sign(noExp))).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token without jti or without role', async () => {
    const { jti: _jti, ...noJti } = claims();
    const { role: _role, ...noRole } = claims();
    await expect(service().verifyAccessToken(await sign(noJti))).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(service().verifyAccessToken(await sign(noRole))).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token for another issuer or audience', async () => {
    const tokens = service();
    await expect(
      tokens.verifyAccessToken(await sign(claims({ iss: 'someone-else' }))),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(tokens.verifyAccessToken(await sign(claims({ aud: 'other-api' })))).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });

  it('rejects a token whose payload was altered after signing', async () => {
    const token = await sign(claims());
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64(claims({ role: 'platform_admin' }))}.${signature}`;
    await expect(service().verifyAccessToken(forged)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects something that is not a JWT at all', async () => {
    await expect(service().verifyAccessToken('not-a-jwt')).rejects.toBeInstanceOf(UnauthorizedError);
  });
});

describe('opaque secrets', () => {
  it('round-trips kind, tenant and id, and stores only a SHA-256 of the secret', () => {
    const { value, hash } = makeOpaqueSecret('mhk', 'acme:eu', 'key_1');
    expect(value.startsWith('mhk.')).toBe(true);
    const parsed = parseOpaqueSecret('mhk', value);
    expect(parsed).toMatchObject({ tenantId: 'acme:eu', id: 'key_1' });
    expect(hash).toEqual(hashSecret(parsed!.secret));
    expect(hash).toHaveLength(32);
    expect(value).not.toContain(hash.toString('hex'));
  });

  it('makes a new random secret every time', () => {
    const a = parseOpaqueSecret('mhr', makeOpaqueSecret('mhr', '*', 'rt_1').value);
    const b = parseOpaqueSecret('mhr', makeOpaqueSecret('mhr', '*', 'rt_1').value);
    expect(a?.tenantId).toBe('*');
    expect(a?.secret).not.toBe(b?.secret);
  });

  it('refuses another kind or a malformed value', () => {
    const { value } = makeOpaqueSecret('mhk', 'acme', 'key_1');
    expect(parseOpaqueSecret('mhr', value)).toBeUndefined();
    expect(parseOpaqueSecret('mhk', 'mhk.abc.def')).toBeUndefined();
    expect(parseOpaqueSecret('mhk', `${value}.extra`)).toBeUndefined();
    expect(parseOpaqueSecret('mhk', 'mhk..key_1.secret')).toBeUndefined();
  });

  it('matches only the exact secret', () => {
    const { value, hash } = makeOpaqueSecret('mhk', 'acme', 'key_1');
    const { secret } = parseOpaqueSecret('mhk', value)!;
    expect(secretMatches(secret, hash)).toBe(true);
    expect(secretMatches(`${secret}x`, hash)).toBe(false);
    expect(secretMatches(secret, Buffer.alloc(16))).toBe(false);
  });
});

describe('TokenService with asymmetric keys (JWT_KEYS_FILE)', () => {
  type Jwk = Record<string, unknown>;
  const jwkOf = (kind: 'ec' | 'ed25519' | 'rsa', kid: string): Jwk => {
    const pair =
      kind === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : kind === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ed25519');
    return { ...pair.privateKey.export({ format: 'jwk' }), kid };
  };
  const A = jwkOf('ec', 'key-a');
  const B = jwkOf('ed25519', 'key-b');
  const C = jwkOf('rsa', 'key-c');
  const keyed = (keys: Jwk[], active: string, now: () => number = () => T0) =>
    new TokenService({ keys: parseJwtKeySet({ keys }, active), accessTtlSeconds: 600, now });
  const headerOf = (token: string) =>
    JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
  const signWith = (jwk: Jwk, header: Record<string, unknown>, payload = claims()) =>
    new SignJWT(payload)
      .setProtectedHeader(header as { alg: string })
      .sign(createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));

  it('signs with the active key, naming its kid and its pinned algorithm', async () => {
    for (const [jwk, alg] of [
      [A, 'ES256'],
      [B, 'EdDSA'],
      [C, 'RS256'],
    ] as const) {
      const tokens = keyed([A, B, C], jwk.kid as string);
      const { token } = await tokens.issueAccessToken({ sub: 'alice', role: 'reader', tenantId: 'acme' });
      expect(headerOf(token)).toEqual({ alg, kid: jwk.kid, typ: 'JWT' });
      await expect(tokens.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
    }
  });

  it('keeps verifying a rotated-out key while it is in the set, and stops once it is removed', async () => {
    const beforeRotation = keyed([A], 'key-a');
    const { token: oldToken } = await beforeRotation.issueAccessToken({
      sub: 'alice',
      role: 'reader',
      tenantId: 'acme',
    });

    const rotated = keyed([A, B], 'key-b');
    const { token: newToken } = await rotated.issueAccessToken({
      sub: 'bob',
      role: 'reader',
      tenantId: 'acme',
    });
    expect(headerOf(newToken).kid).toBe('key-b');
    await expect(rotated.verifyAccessToken(oldToken)).resolves.toMatchObject({ sub: 'alice' });
    await expect(rotated.verifyAccessToken(newToken)).resolves.toMatchObject({ sub: 'bob' });
    // A retired key may stay in the file as a public key only.
    const { d: _d, ...publicA } = A;
    await expect(keyed([publicA, B], 'key-b').verifyAccessToken(oldToken)).resolves.toMatchObject({
      sub: 'alice',
    });

    const retired = keyed([B], 'key-b');
    await expect(retired.verifyAccessToken(oldToken)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(retired.verifyAccessToken(newToken)).resolves.toMatchObject({ sub: 'bob' });
  });

  it('rejects an unknown kid, a missing kid, and a kid paired with another algorithm', async () => {
    const tokens = keyed([A, B], 'key-a');
    const stranger = jwkOf('ec', 'key-z');
    await expect(
      tokens.verifyAccessToken(await signWith(stranger, { alg: 'ES256', kid: 'key-z' })),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    // A stranger's key under a known kid: the signature does not match.
    await expect(
      tokens.verifyAccessToken(await signWith(stranger, { alg: 'ES256', kid: 'key-a' })),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(tokens.verifyAccessToken(await signWith(A, { alg: 'ES256' }))).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    // B is an EdDSA key: a header claiming another algorithm for it is refused before any check.
    const rsaUnderB = await signWith(C, { alg: 'RS256', kid: 'key-b' });
    await expect(keyed([A, B, C], 'key-a').verifyAccessToken(rsaUnderB)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    // Control: the same key and header, correctly paired, verifies.
    await expect(
      tokens.verifyAccessToken(await signWith(A, { alg: 'ES256', kid: 'key-a' })),
    ).resolves.toMatchObject({
      sub: 'alice',
    });
  });

  it('rejects a token whose payload or signature was tampered with', async () => {
    const tokens = keyed([A], 'key-a');
    const { token } = await tokens.issueAccessToken({ sub: 'alice', role: 'reader', tenantId: 'acme' });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${header}.${b64({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), role: 'platform_admin' })}.${signature}`;
    await expect(tokens.verifyAccessToken(forged)).rejects.toBeInstanceOf(UnauthorizedError);
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    await expect(tokens.verifyAccessToken(`${header}.${payload}.${flipped}`)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });

  it('rejects HS256 (also keyed with a public key, the classic confusion) and alg none', async () => {
    const tokens = keyed([A, C], 'key-a');
    await expect(tokens.verifyAccessToken(await sign(claims()))).rejects.toBeInstanceOf(UnauthorizedError);
    const publicPem = createPublicKey({ key: C as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const confused = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', kid: 'key-c' })
      .sign(new TextEncoder().encode(String(publicPem)));
    await expect(tokens.verifyAccessToken(confused)).rejects.toBeInstanceOf(UnauthorizedError);
    const none = `${b64({ alg: 'none', kid: 'key-a', typ: 'JWT' })}.${b64(claims())}.`;
    await expect(tokens.verifyAccessToken(none)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('publishes the public keys without private members; none in HS256 mode', () => {
    const { keys } = keyed([A, B, C], 'key-a').publicKeys();
    expect(keys.map((k) => k.kid)).toEqual(['key-a', 'key-b', 'key-c']);
    for (const k of keys) for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(m);
    expect(service().publicKeys()).toEqual({ keys: [] });
  });
});
