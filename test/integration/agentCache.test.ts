/**
 * The send path's agent cache across API processes: a change made through one process reaches
 * another's cache through Redis pub/sub, long before the cache's TTL. The second "process" is a
 * second composition (its own Database, hence its own cache) on the same database and Redis prefix.
 */
import { AGENT_CACHE_TTL_MS, lookupAgent } from '../../src/ingress/agentLookup';
import { type SecondProcess, startSecondProcess } from '../support/secondProcess';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let other: SecondProcess;
let token: string;

beforeAll(async () => {
  app = await startTestApp();
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme')`);
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  other = await startSecondProcess(app);
  const created = await app.request('POST', '/agents', { token, body: { agent_id: 'bot', name: 'Bot' } });
  if (created.status !== 201) throw new Error(`creating the agent: ${created.status}`);
});

afterAll(async () => {
  await other.close();
  await app.close();
});

/** The other process's view of the agent, polled until `expected` or a deadline far below the TTL. */
async function seenByOther(expected: string | undefined): Promise<string | undefined> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const facts = await lookupAgent(other.composition.deps.db, 'acme', 'bot', Date.now());
    if (facts?.status === expected || Date.now() > deadline) return facts?.status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent cache across API processes', () => {
  it('sees a deactivation and a deletion made elsewhere well within the cache TTL', async () => {
    expect(AGENT_CACHE_TTL_MS).toBeGreaterThan(3000);
    // Cached in the other process as active.
    expect((await lookupAgent(other.composition.deps.db, 'acme', 'bot', Date.now()))?.status).toBe('active');

    const put = await app.request('PUT', '/agents/bot', { token, body: { status: 'inactive' } });
    expect(put.status).toBe(200);
    expect(await seenByOther('inactive')).toBe('inactive');

    const del = await app.request('DELETE', '/agents/bot', { token });
    expect(del.status).toBe(200);
    expect(await seenByOther(undefined)).toBeUndefined();
  });
});
