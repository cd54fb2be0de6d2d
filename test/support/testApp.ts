import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createApp } from '../../src/api/app';
import { SocketServer } from '../../src/api/sockets/socketServer';
import { compose } from '../../src/composition';
import { loadConfig } from '../../src/config';
import type { Dependencies } from '../../src/dependencies';
import type { Clock } from '../../src/domain/clock';
import type { Role } from '../../src/domain/roles';
import type { SecretBox } from '../../src/llm/secretBox';
import type { Logger } from '../../src/logger';
import { createTestDatabase, createTestRedis, type TestDatabase } from './testDatabase';

/** The server key test apps seal agents' LLM API keys with (`MAIHIVE_SECRET_KEY`). */
export const TEST_SECRET_KEY = 'test-server-key-that-is-at-least-32-bytes';

export interface TestResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** Event-loop delay (ms) at which a test app counts as overloaded: far beyond any stall of a test. */
export const TEST_MAX_LOOP_DELAY_MS = 60_000;

/** The success/error envelope, loosely typed for assertions. */
export interface Envelope {
  success: boolean;
  data: Record<string, unknown> & { [key: string]: unknown };
  error?: { code: string; message: string; details?: Record<string, unknown> };
  request_id: string;
  timestamp: string;
  message?: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body string (sent as is, e.g. malformed JSON or another content type). */
  rawBody?: string;
  token?: string;
  apiKey?: string;
  headers?: Record<string, string>;
}

export interface TestApp {
  readonly url: string;
  readonly deps: Dependencies;
  /** The box sealing agents' LLM API keys; workers of the test open them with it. */
  readonly secretBox: SecretBox;
  readonly t: TestDatabase;
  /** The chat-socket server (OneBot reverse WebSocket, maim_message) on the app's HTTP server. */
  readonly sockets: SocketServer;
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse<Envelope>>;
  /** An access token signed by the app's own token service (for tests of other sections than auth). */
  tokenFor(claims: { role: Role; tenantId?: string; agentId?: string; sub?: string }): Promise<string>;
  close(): Promise<void>;
}

/**
 * The whole HTTP app on port 0, against this file's own database and Redis key prefix.
 * `env` overrides configuration variables (e.g. `LEGACY_ANONYMOUS`).
 */
export async function startTestApp(
  options: {
    env?: Record<string, string>;
    clock?: Clock;
    /** Redis the app uses instead of the shared test server (e.g. a private one a test stops). */
    redisUrl?: string;
    /** The app's logger (default: the test database's silent one), e.g. one writing to a buffer. */
    logger?: Logger;
    /** Rewrites the app's PostgreSQL URL (e.g. through a proxy a test cuts); arranging still goes direct. */
    databaseUrl?: (appUrl: string) => string;
  } = {},
): Promise<TestApp> {
  const t = await createTestDatabase();
  const redisHandle = createTestRedis();
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'test-secret-that-is-at-least-32-bytes-long',
    MAIHIVE_SECRET_KEY: TEST_SECRET_KEY,
    REDIS_PREFIX: redisHandle.appPrefix,
    LOG_LEVEL: 'silent',
    // Refusals at once: tests of limits assert on them, and waiting would only slow them down.
    INGRESS_REFUSAL_JITTER_MS: '0',
    // Jest on a busy machine stalls event loops for hundreds of ms: that must not shed the tests'
    // own requests. Tests of overload set the governor's loop delay beyond this themselves.
    INGRESS_MAX_LOOP_DELAY_MS: String(TEST_MAX_LOOP_DELAY_MS),
    ...options.env,
  });
  const composition = await compose({
    config,
    logger: options.logger ?? t.logger,
    databaseUrl: options.databaseUrl ? options.databaseUrl(t.appUrl) : t.appUrl,
    redisUrl: options.redisUrl ?? redisHandle.url,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const app = createApp(composition.deps);
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sockets = new SocketServer(composition.deps);
  await sockets.attach(server);

  return {
    url,
    deps: composition.deps,
    secretBox: composition.secretBox,
    t,
    sockets,
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.apiKey) headers['x-api-key'] = o.apiKey;
      let body: string | undefined = o.rawBody;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (e.g. SSE or the dashboard): keep the text
      }
      return { status: res.status, headers: res.headers, body: parsed as Envelope };
    },
    async tokenFor(claims) {
      const { token } = await composition.deps.tokens.issueAccessToken({
        sub: claims.sub ?? `${claims.role}-user`,
        role: claims.role,
        tenantId: claims.tenantId,
        agentId: claims.agentId,
      });
      return token;
    },
    async close() {
      await sockets.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await composition.close();
      // Remove this file's BullMQ and MaiHive keys (prefix), then its database.
      const { redis } = redisHandle;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisPrefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      await redisHandle.close();
      await t.close();
    },
  };
}
