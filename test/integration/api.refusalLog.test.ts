/**
 * The access log and refusals (429): a tenant over its rate gets no log line per refused request,
 * but one `requests refused` warn line per interval with the count by limit, attributed to the
 * tenant also when the refusal came before authentication (an early refusal); each refused request
 * keeps a line at debug. Other answers keep their lines.
 */
import { randomBytes } from 'node:crypto';

import { createTenant } from '../../src/db/repositories/tenants';
import { createLogger } from '../../src/logger';
import { startTestApp, type TestApp } from '../support/testApp';

interface Line {
  level: number;
  msg: string;
  tenant_id?: string | null;
  refused?: number;
  limits?: Record<string, number>;
  res?: { statusCode: number };
}

const lines: Line[] = [];
let app: TestApp;

beforeAll(async () => {
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
  });
  app = await startTestApp({ logger });
});
afterAll(async () => {
  await app.close();
});

async function tenant(settings: Record<string, unknown>): Promise<{ tenantId: string; token: string }> {
  const tenantId = `r${randomBytes(3).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId, settings }));
  return { tenantId, token: await app.tokenFor({ role: 'tenant_admin', tenantId }) };
}

const send = (token: string) =>
  app.request('POST', '/chat/send', { token, body: { message: '你好', chat_stream_id: 's1' } });

describe('access log of refusals', () => {
  it("sums a tenant's 429s into one warn line per interval, early refusals included, and logs each at debug only", async () => {
    const slow = await tenant({ credential_rate_limit_per_second: 1 });
    const other = await tenant({});
    app.deps.refusalLog.flush();
    lines.length = 0;

    expect((await send(slow.token)).status).toBe(200);
    const refused = [await send(slow.token), await send(slow.token), await send(slow.token)];
    expect(refused.map((r) => r.status)).toEqual([429, 429, 429]);
    expect(refused.map((r) => r.body.error?.details?.limit)).toEqual([
      'credential',
      'credential',
      'credential',
    ]);
    expect((await send(other.token)).status).toBe(200);

    const completed = (status: number) =>
      lines.filter((l) => l.msg === 'request completed' && l.res?.statusCode === status);
    // The answers that were not refused keep their info line; no 429 is said at warn one by one.
    expect(completed(200)).toHaveLength(2);
    expect(completed(429)).toHaveLength(0);
    expect(lines.filter((l) => l.msg === 'request refused' && l.level === 20)).toHaveLength(3);
    expect(lines.filter((l) => l.msg === 'requests refused')).toEqual([]);

    app.deps.refusalLog.flush();
    const summary = lines.filter((l) => l.msg === 'requests refused');
    // The second and third refusals came before authentication (the credential was refused a
    // moment ago): they count for the same tenant.
    expect(summary).toEqual([
      expect.objectContaining({ level: 40, tenant_id: slow.tenantId, refused: 3, limits: { credential: 3 } }),
    ]);
    // An interval without refusals writes nothing.
    lines.length = 0;
    app.deps.refusalLog.flush();
    expect(lines).toEqual([]);
  });
});
