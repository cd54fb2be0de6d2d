/**
 * 权限验证 — credentials: every forged, stale or revoked token and key is the same 401, and a
 * suspended tenant's credentials stop at once.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SignJWT } from 'jose';

import { JWT_AUDIENCE, JWT_ISSUER } from '../../src/auth/tokens';
import { created } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';
import { codeOf, PASSWORD, startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

const HS_SECRET = new TextEncoder().encode('test-secret-that-is-at-least-32-bytes-long');
let w: World;
let asym: TestApp;
const dir = mkdtempSync(join(tmpdir(), 'mh-sec-keys-'));
const ecKey = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid: 'k1',
};

beforeAll(async () => {
  w = await startWorld();
  const file = join(dir, 'keys.json');
  writeFileSync(file, JSON.stringify({ keys: [ecKey] }));
  asym = await startTestApp({ env: { JWT_KEYS_FILE: file, JWT_ACTIVE_KID: 'k1' } });
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await Promise.allSettled([w.app.close(), asym.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
function claims(over: Record<string, unknown> = {}) {
  return {
    sub: 'a_admin',
    tenant_id: 'tenant_a',
    role: 'tenant_admin',
    jti: `at_forged_${Math.random()}`,
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    iat: now(),
    exp: now() + 600,
    ...over,
  };
}
const sign = (payload: Record<string, unknown>, key: Uint8Array = HS_SECRET) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);

/** Status and code of a request with these credentials. */
async function answer(app: TestApp, auth: { token?: string; apiKey?: string }) {
  const res = await app.request('GET', '/agents', auth);
  return { status: res.status, code: codeOf(res) };
}
const REFUSED = { status: 401, code: 'UNAUTHORIZED' };

describe('access tokens', () => {
  it('accepts a correctly signed token (the control for the cases below)', async () => {
    const res = await w.app.request('GET', '/agents', { token: await sign(claims()) });
    expect(res.status).toBe(200);
  });

  it('rejects alg none', async () => {
    expect(await answer(w.app, { token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.` })).toEqual(
      REFUSED,
    );
  });

  it('rejects HS256 signed with the server’s public key (algorithm confusion)', async () => {
    const publicJwk = Object.fromEntries(Object.entries(ecKey).filter(([k]) => k !== 'd'));
    for (const secret of [JSON.stringify(publicJwk), `${publicJwk.x as string}`]) {
      const token = await new SignJWT(claims({ sub: 'root', role: 'platform_admin', tenant_id: undefined }))
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .sign(new TextEncoder().encode(secret));
      expect(await answer(asym, { token })).toEqual(REFUSED);
    }
  });

  it('rejects an unknown kid', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const token = await new SignJWT(claims({ sub: 'root', role: 'platform_admin', tenant_id: undefined }))
      .setProtectedHeader({ alg: 'ES256', kid: 'k-unknown' })
      .sign(other);
    expect(await answer(asym, { token })).toEqual(REFUSED);
  });

  it('rejects an expired token', async () => {
    expect(
      await answer(w.app, { token: await sign(claims({ iat: now() - 7200, exp: now() - 3600 })) }),
    ).toEqual(REFUSED);
  });

  it('rejects a token that is not valid yet (nbf in the future)', async () => {
    expect(await answer(w.app, { token: await sign(claims({ nbf: now() + 3600 })) })).toEqual(REFUSED);
  });

  it('rejects a token without exp', async () => {
    const { exp: _exp, ...noExp } = claims();
    expect(await answer(w.app, { token: await sign(noExp) })).toEqual(REFUSED);
  });

  it.each([
    ['a wrong audience', { aud: 'someone-else' }],
    ['a wrong issuer', { iss: 'evil' }],
  ])('rejects %s', async (_name, over) => {
    expect(await answer(w.app, { token: await sign(claims(over)) })).toEqual(REFUSED);
  });

  it('rejects edited claims (role and tenant raised, signature kept)', async () => {
    const [header, , signature] = w.A.tokens.reader.split('.') as [string, string, string];
    const payload = JSON.parse(
      Buffer.from(w.A.tokens.reader.split('.')[1]!, 'base64url').toString(),
    ) as Record<string, unknown>;
    for (const edit of [{ role: 'tenant_admin' }, { tenant_id: 'tenant_b' }, { role: 'platform_admin' }]) {
      expect(
        await answer(w.app, { token: `${header}.${b64({ ...payload, ...edit })}.${signature}` }),
      ).toEqual(REFUSED);
    }
  });

  it('rejects a token signed with another secret', async () => {
    expect(
      await answer(w.app, { token: await sign(claims(), new TextEncoder().encode('x'.repeat(40))) }),
    ).toEqual(REFUSED);
  });
});

describe('API keys and refresh tokens', () => {
  it('rejects a revoked API key at once', async () => {
    const key = await w.app.request('POST', '/auth/api-keys', {
      token: w.A.tokens.tenant_admin,
      body: { name: 'short-lived', role: 'reader' },
    });
    const apiKey = key.body.data.api_key as string;
    expect((await w.app.request('GET', '/agents', { apiKey })).status).toBe(200);
    const del = await w.app.request('DELETE', `/auth/api-keys/${key.body.data.key_id as string}`, {
      token: w.A.tokens.tenant_admin,
    });
    expect(del.status).toBe(200);
    expect(await answer(w.app, { apiKey })).toEqual(REFUSED);
  });

  it('rejects an expired API key', async () => {
    const key = await w.app.request('POST', '/auth/api-keys', {
      token: w.A.tokens.tenant_admin,
      body: { name: 'expiring', role: 'reader' },
    });
    await w.app.t.admin(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1`, [
      key.body.data.key_id,
    ]);
    expect(await answer(w.app, { apiKey: key.body.data.api_key as string })).toEqual(REFUSED);
  });

  it('rejects A’s key edited to name tenant B, and a key with a changed secret', async () => {
    const [kind, , id, secret] = w.A.readerKey.split('.') as [string, string, string, string];
    expect(
      await answer(w.app, {
        apiKey: [kind, Buffer.from('tenant_b').toString('base64url'), id, secret].join('.'),
      }),
    ).toEqual(REFUSED);
    expect(
      await answer(w.app, {
        apiKey: [kind, Buffer.from('tenant_a').toString('base64url'), id, `${secret}x`].join('.'),
      }),
    ).toEqual(REFUSED);
    expect(await answer(w.app, { apiKey: 'not-a-key' })).toEqual(REFUSED);
  });

  it('rejects a spent refresh token, and revokes its family', async () => {
    const login = await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_a', username: 'a_reader', password: PASSWORD },
    });
    const first = login.body.data.refresh_token as string;
    const second = await w.app.request('POST', '/auth/refresh', { body: { refresh_token: first } });
    expect(second.status).toBe(200);
    const replay = await w.app.request('POST', '/auth/refresh', { body: { refresh_token: first } });
    expect(replay.status).toBe(401);
    const child = await w.app.request('POST', '/auth/refresh', {
      body: { refresh_token: second.body.data.refresh_token },
    });
    expect(child.status).toBe(401);
  });

  it('rejects a logged-out access token', async () => {
    const login = await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_a', username: 'a_operator', password: PASSWORD },
    });
    const token = login.body.data.access_token as string;
    expect((await w.app.request('POST', '/auth/logout', { token })).status).toBe(200);
    expect(await answer(w.app, { token })).toEqual(REFUSED);
  });

  it("stops a suspended tenant's tokens, keys, refresh tokens and logins (401 each)", async () => {
    created(
      await w.app.request('POST', '/tenants', {
        token: w.platformAdmin,
        body: { tenant_id: 'tenant_c', name: 'C', admin: { username: 'c_admin', password: PASSWORD } },
      }),
    );
    const login = await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_c', username: 'c_admin', password: PASSWORD },
    });
    const token = login.body.data.access_token as string;
    const key = await w.app.request('POST', '/auth/api-keys', { token, body: { name: 'c', role: 'reader' } });
    const suspend = await w.app.request('PUT', '/tenants/tenant_c', {
      token: w.platformAdmin,
      body: { status: 'suspended' },
    });
    expect(suspend.status).toBe(200);
    expect(await answer(w.app, { token })).toEqual(REFUSED);
    expect(await answer(w.app, { apiKey: key.body.data.api_key as string })).toEqual(REFUSED);
    const refresh = await w.app.request('POST', '/auth/refresh', {
      body: { refresh_token: login.body.data.refresh_token },
    });
    expect(refresh.status).toBe(401);
    const again = await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_c', username: 'c_admin', password: PASSWORD },
    });
    expect(again.status).toBe(401);
  });
});
