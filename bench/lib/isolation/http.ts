/** A small keep-alive JSON client for the isolation bench, and the tenant set-up it does over HTTP. */
import http from 'node:http';

export interface HttpResult {
  status: number;
  /** Parsed JSON body, or the text when it is not JSON. */
  json: unknown;
  headers: http.IncomingHttpHeaders;
  /**
   * ms from the call to: a socket assigned (the agent's queue), connected (new sockets only),
   * the request written, the response's headers.
   */
  timing: { socket: number; connected: number | null; sent: number; headers: number };
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  agent?: http.Agent;
  /** Client-side timeout, ms; the request then fails with status 0. Default 60000. */
  timeoutMs?: number;
}

const defaultAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One request; network errors and timeouts resolve with status 0 rather than throw. */
export function request(
  base: string,
  method: string,
  path: string,
  o: RequestOptions = {},
): Promise<HttpResult> {
  const url = new URL(`/api/v1${path}`, base);
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string | number> = { ...o.headers };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  const started = performance.now();
  const timing: HttpResult['timing'] = { socket: -1, connected: null, sent: -1, headers: -1 };
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        agent: o.agent ?? defaultAgent,
        headers,
      },
      (res) => {
        timing.headers = performance.now() - started;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, json, headers: res.headers, timing });
        });
        res.on('error', () => resolve({ status: 0, json: 'response error', headers: {}, timing }));
      },
    );
    req.on('socket', (socket) => {
      timing.socket = performance.now() - started;
      if (socket.connecting) socket.once('connect', () => (timing.connected = performance.now() - started));
    });
    req.on('finish', () => (timing.sent = performance.now() - started));
    req.setTimeout(o.timeoutMs ?? 60_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, json: err.message, headers: {}, timing }));
    req.end(payload);
  });
}

export function dataOf<T>(r: HttpResult): T {
  return (r.json as { data: T }).data;
}

async function ok(r: Promise<HttpResult>, what: string): Promise<HttpResult> {
  const res = await r;
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
  }
  return res;
}

/** The bot's QQ number in the OneBot events and its name in mentions. */
export const BOT_QQ = '1145141919';
export const BOT_NAME = '麦麦';

export interface BenchTenant {
  tenantId: string;
  /** An agent-role API key bound to the tenant's `default` agent (what adapters use). */
  apiKey: string;
}

/** Logs in as the platform admin; returns its bearer token. */
export async function adminToken(base: string, username: string, password: string): Promise<string> {
  const res = await ok(request(base, 'POST', '/auth/login', { body: { username, password } }), 'admin login');
  return dataOf<{ access_token: string }>(res).access_token;
}

/**
 * Creates a tenant with its own admin, as an operator would: the tenant's `default` agent answers
 * as `BOT_QQ` on `qq`, and an agent API key is made for it.
 */
export async function createTenant(
  base: string,
  adminBearer: string,
  tenantId: string,
  settings?: Record<string, unknown>,
): Promise<BenchTenant> {
  const password = `pw-${tenantId}-0123456789`;
  await ok(
    request(base, 'POST', '/tenants', {
      headers: { authorization: `Bearer ${adminBearer}` },
      body: {
        tenant_id: tenantId,
        name: tenantId,
        admin: { username: 'owner', password },
        ...(settings ? { settings } : {}),
      },
    }),
    `create tenant ${tenantId}`,
  );
  const login = await ok(
    request(base, 'POST', '/auth/login', { body: { tenant_id: tenantId, username: 'owner', password } }),
    `login ${tenantId}`,
  );
  const auth = { authorization: `Bearer ${dataOf<{ access_token: string }>(login).access_token}` };
  await ok(
    request(base, 'PUT', '/agents/default/config', {
      headers: auth,
      body: { accounts: [{ platform: 'qq', account_id: BOT_QQ, nickname: BOT_NAME }] },
    }),
    `agent config ${tenantId}`,
  );
  const key = await ok(
    request(base, 'POST', '/auth/api-keys', {
      headers: auth,
      body: { name: 'adapter', role: 'agent', agent_id: 'default' },
    }),
    `api key ${tenantId}`,
  );
  return { tenantId, apiKey: dataOf<{ api_key: string }>(key).api_key };
}

/** A OneBot v11 group message event that @-mentions the bot, as NapCat posts it. */
export function oneBotEvent(group: number, user: number, messageId: number, text: string): unknown {
  return {
    time: Math.floor(Date.now() / 1000),
    self_id: Number(BOT_QQ),
    post_type: 'message',
    message_type: 'group',
    sub_type: 'normal',
    message_id: messageId,
    group_id: group,
    user_id: user,
    message: [
      { type: 'at', data: { qq: BOT_QQ } },
      { type: 'text', data: { text: ` ${text}` } },
    ],
    raw_message: `[CQ:at,qq=${BOT_QQ}] ${text}`,
    font: 14,
    message_format: 'array',
    sender: { user_id: user, nickname: `用户${user}`, card: '', role: 'member' },
  };
}
