/**
 * Fair overload control at the ingress, through HTTP: a tenant at its in-flight limit gets 429 at
 * once while another tenant goes through; under overload, the tenant above its fair share is
 * turned away and the one below it is not. No worker runs here, so `?wait` sends stay in progress
 * until their wait ends: that is how a test holds requests open.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';

import type { Request } from 'express';

import { Authenticator } from '../../src/auth/authenticate';
import type { HeaderSource } from '../../src/auth/scope';
import { createTenant } from '../../src/db/repositories/tenants';
import { LOOP_DELAY_WINDOWS } from '../../src/ingress/ingressGovernor';
import { startTestApp, TEST_MAX_LOOP_DELAY_MS, type TestApp } from '../support/testApp';
import { waitFor } from '../support/waitFor';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

async function tenant(ingressMaxInFlight?: number): Promise<string> {
  const tenantId = `g${randomBytes(3).toString('hex')}`;
  const settings = ingressMaxInFlight ? { scheduling: { ingress_max_in_flight: ingressMaxInFlight } } : {};
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId, settings }));
  return app.tokenFor({ role: 'tenant_admin', tenantId });
}

function send(token: string, waitMs?: number) {
  return app.request('POST', `/chat/send${waitMs ? `?wait=${waitMs}` : ''}`, {
    token,
    body: { message: '你好', chat_stream_id: 's1' },
  });
}

/** As if the event loop had been late window after window (the sampler is stopped for the test). */
function sustainedLoopDelay(ms: number): void {
  for (let i = 0; i < LOOP_DELAY_WINDOWS; i++) app.deps.ingress.governor.setLoopDelay(ms);
}

/** Resolves once the gate counts `n` requests in progress. */
async function inProgress(n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (app.deps.ingress.governor.snapshot().inFlight < n) {
    if (Date.now() > deadline) throw new Error(`never saw ${n} requests in progress`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ingress gate', () => {
  it('refuses a tenant at its in-flight limit with 429 and Retry-After, and lets another tenant through', async () => {
    const busy = await tenant(2);
    const other = await tenant();
    const held = [send(busy, 1500), send(busy, 1500)];
    await inProgress(2);

    const refused = await send(busy);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toMatchObject({
      code: 'RATE_LIMIT_EXCEEDED',
      details: { limit: 'in_flight', in_flight: 2, max_in_flight: 2 },
    });
    expect((await send(other)).status).toBe(200);

    // Once its requests end, the tenant is admitted again.
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect((await send(busy)).status).toBe(200);
  });

  it('under overload turns away the tenant above its fair share, never the one below it', async () => {
    const heavy = await tenant();
    const light = await tenant();
    const held = [send(heavy, 1500), send(heavy, 1500), send(heavy, 1500)];
    await inProgress(3);
    app.deps.ingress.close();
    sustainedLoopDelay(TEST_MAX_LOOP_DELAY_MS + 1);
    try {
      const shed = await send(heavy);
      expect(shed.status).toBe(429);
      expect(shed.body.error?.details).toMatchObject({ limit: 'overload' });
      // `light` holds nothing: below its share, it is admitted however loaded the process is.
      expect((await send(light)).status).toBe(200);
    } finally {
      sustainedLoopDelay(0);
      app.deps.ingress.start();
    }
    await Promise.all(held);
  });

  it('holds no slot for a send whose client hung up while it was being authenticated', async () => {
    const token = await tenant();
    const body = JSON.stringify({ message: '你好', chat_stream_id: 's1' });
    const { hostname, port } = new URL(app.url);
    const request =
      `POST /api/v1/chat/send HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    // Authentication (a Redis round trip) finishes only once the client has gone, as it does when
    // a client gives up on a busy server; the gate runs after it.
    const authenticate = Authenticator.prototype.authenticate;
    let authenticated = 0;
    Authenticator.prototype.authenticate = async function (this: Authenticator, req: HeaderSource) {
      const res = (req as Request).res!;
      if (!res.closed) await once(res, 'close');
      const principal = await authenticate.call(this, req);
      authenticated++;
      return principal;
    };
    try {
      await Promise.all(
        Array.from(
          { length: 20 },
          () =>
            new Promise<void>((resolve, reject) => {
              const socket = connect(Number(port), hostname, () => socket.end(request));
              socket.on('close', () => resolve());
              socket.on('error', reject);
            }),
        ),
      );
      // Every one of them got through authentication and the gate...
      await waitFor(() => (authenticated >= 20 ? true : undefined));
    } finally {
      Authenticator.prototype.authenticate = authenticate;
    }
    // ...and none is counted in progress, for good.
    expect(app.deps.ingress.governor.snapshot().inFlight).toBe(0);
    expect((await send(token)).status).toBe(200);
  });

  it('does not govern requests without a tenant (health checks, platform admins)', async () => {
    const admin = await app.tokenFor({ role: 'platform_admin' });
    app.deps.ingress.close();
    sustainedLoopDelay(TEST_MAX_LOOP_DELAY_MS + 1);
    try {
      expect((await app.request('GET', '/health')).status).toBe(200);
      expect((await app.request('GET', '/tenants', { token: admin })).status).toBe(200);
    } finally {
      sustainedLoopDelay(0);
      app.deps.ingress.start();
    }
  });
});
