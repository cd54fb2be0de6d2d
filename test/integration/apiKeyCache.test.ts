/**
 * API keys are read through a cache in Redis shared by every API process: a key revoked through
 * one process stops working in another at its next request, although that process read the key
 * (and cached it) moments before. The second "process" is a second composition with an app of
 * its own, on the same database and Redis prefix.
 */
import { type SecondProcess, startSecondProcess } from '../support/secondProcess';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let other: SecondProcess;
let token: string;

beforeAll(async () => {
  app = await startTestApp();
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme')`);
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  other = await startSecondProcess(app, { http: true });
});

afterAll(async () => {
  await other.close();
  await app.close();
});

async function meThroughOther(apiKey: string): Promise<number> {
  const res = await fetch(`${other.url!}/api/v1/auth/me`, { headers: { 'x-api-key': apiKey } });
  return res.status;
}

describe('API key cache across API processes', () => {
  it('stops a key revoked through one process at the next request in another', async () => {
    const created = await app.request('POST', '/auth/api-keys', {
      token,
      body: { name: 'adapter', role: 'agent', agent_id: 'default' },
    });
    expect(created.status).toBe(201);
    const { key_id: keyId, api_key: apiKey } = created.body.data as { key_id: string; api_key: string };
    expect(await meThroughOther(apiKey)).toBe(200);
    expect(await meThroughOther(apiKey)).toBe(200);

    const revoked = await app.request('DELETE', `/auth/api-keys/${keyId}`, { token });
    expect(revoked.status).toBe(200);
    expect(await meThroughOther(apiKey)).toBe(401);
  });

  it('refuses a key whose secret does not match the cached hash, and an unknown key', async () => {
    const created = await app.request('POST', '/auth/api-keys', {
      token,
      body: { name: 'reader', role: 'reader' },
    });
    const apiKey = created.body.data.api_key as string;
    expect(await meThroughOther(apiKey)).toBe(200);
    const [prefix, tenant, id] = apiKey.split('.');
    expect(await meThroughOther(`${prefix}.${tenant}.${id}.not-the-secret`)).toBe(401);
    expect(await meThroughOther(`${prefix}.${tenant}.key_unknown.whatever`)).toBe(401);
    // A key id that is no identifier never reaches Redis or PostgreSQL.
    expect(await meThroughOther(`${prefix}.${tenant}.${'x'.repeat(300)}.s`)).toBe(401);
  });
});
