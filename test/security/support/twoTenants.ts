/**
 * The security suite's world: two tenants, A and B, mutual adversaries, each with agents, chat
 * streams, messages, memories, an emoji pack, API keys, queued jobs and users of every role (agent credentials are keys and agent-bound tokens). B's
 * objects have ids of their own (`b_…`), so that naming one with A's credentials can only find it
 * by crossing the tenant boundary; `shared_*` ids exist in both tenants.
 *
 * Everything is created over HTTP as a real client would, except stored messages (written by the
 * workers, which these tests do not run) and failed messages, inserted as the owner.
 */
import { created } from '../../support/fixtures';
import { type Envelope, startTestApp, type TestApp, type TestResponse } from '../../support/testApp';

export const PASSWORD = 'correct horse battery staple';
export const PLATFORM_ADMIN_PASSWORD = 'platform-admin-password';

export interface TenantWorld {
  readonly id: 'tenant_a' | 'tenant_b';
  /** Prefix of this tenant's own object ids (`a` or `b`). */
  readonly p: 'a' | 'b';
  readonly agent: string;
  readonly stream: string;
  readonly platform: string;
  /** Stored messages: one replied, one failed (with an error text). */
  readonly message: string;
  readonly failedMessage: string;
  readonly memory: string;
  readonly pack: string;
  /** Id of a waiting heartflow job of this tenant. */
  readonly job: string;
  /** Key id and secret of an agent key (bound to `agent`), and of a reader key. */
  readonly agentKeyId: string;
  readonly agentKey: string;
  readonly readerKey: string;
  /** Access tokens (JWT), one per role: the admin's from a real login, the others as the server signs them. */
  readonly tokens: { tenant_admin: string; operator: string; reader: string; agent: string };
  readonly usernames: readonly string[];
}

export interface World {
  app: TestApp;
  A: TenantWorld;
  B: TenantWorld;
  platformAdmin: string;
}

export const codeOf = (res: TestResponse<Envelope>) => res.body.error?.code;

async function login(app: TestApp, tenantId: string, username: string): Promise<string> {
  const res = await app.request('POST', '/auth/login', {
    body: { tenant_id: tenantId, username, password: PASSWORD },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.access_token as string;
}

async function seedTenant(app: TestApp, platformAdmin: string, p: 'a' | 'b'): Promise<TenantWorld> {
  const id = `tenant_${p}` as const;
  const admin = `${p}_admin`;
  created(
    await app.request('POST', '/tenants', {
      token: platformAdmin,
      body: {
        tenant_id: id,
        name: `Tenant ${p.toUpperCase()}`,
        admin: { username: admin, password: PASSWORD },
      },
    }),
  );
  const tokenAdmin = await login(app, id, admin);
  const usernames = [admin];
  for (const role of ['operator', 'reader'] as const) {
    const username = `${p}_${role}`;
    created(
      await app.request('POST', `/tenants/${id}/users`, {
        token: tokenAdmin,
        body: { username, password: PASSWORD, role },
      }),
    );
    usernames.push(username);
  }
  const agent = `${p}_bot`;
  const platform = 'qq';
  const stream = `${p}_stream`;
  created(
    await app.request('POST', '/agents', {
      token: tokenAdmin,
      body: { agent_id: agent, name: `Bot ${p}`, platform },
    }),
  );
  for (const chat of [stream, 'shared_stream']) {
    created(
      await app.request('POST', '/chat/streams', {
        token: tokenAdmin,
        body: { chat_stream_id: chat, platform, chat_type: 'group', agent_id: agent },
      }),
    );
  }
  const message = `msg_${p}_stored`;
  const failedMessage = `msg_${p}_failed`;
  await app.t.admin(
    `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, status, response, error)
     VALUES ($1, $2, $3, $4, $5, 'in', $6, 'replied', $7, NULL),
            ($1, $8, $3, $4, $5, 'in', $9, 'failed', NULL, 'the reply could not be produced')`,
    [
      id,
      message,
      agent,
      platform,
      stream,
      `secret words of ${id}`,
      `reply of ${id}`,
      failedMessage,
      `failed of ${id}`,
    ],
  );
  const memory = created(
    await app.request('POST', '/memory/store', {
      token: tokenAdmin,
      body: {
        content: `${id} likes 黄焖鸡米饭 and 100% cotton_shirts`,
        memory_type: 'preference',
        agent_id: agent,
        tags: ['food'],
      },
    }),
  ).body.data.memory_id as string;
  const pack = `${p}_pack`;
  created(
    await app.request('POST', '/emoji/packs', {
      token: tokenAdmin,
      body: {
        pack_id: pack,
        name: `Pack ${p}`,
        emojis: [{ emoji: '😀', emotion: 'happy', tags: ['happy'] }],
      },
    }),
  );
  const agentKeyRes = created(
    await app.request('POST', '/auth/api-keys', {
      token: tokenAdmin,
      body: { name: `${p} adapter`, role: 'agent', agent_id: agent },
    }),
  );
  const readerKey = created(
    await app.request('POST', '/auth/api-keys', {
      token: tokenAdmin,
      body: { name: `${p} reader`, role: 'reader' },
    }),
  ).body.data.api_key as string;
  // A waiting job: the test app runs no workers, so it stays in the tenant's queue.
  const sent = await app.request('POST', '/chat/send', {
    apiKey: agentKeyRes.body.data.api_key as string,
    body: { message: `queued words of ${id}`, chat_stream_id: stream, platform },
  });
  if (sent.status !== 200) throw new Error(`send failed: ${sent.status} ${JSON.stringify(sent.body)}`);
  const jobs = await app.request('GET', `/admin/queues/${id}/jobs?state=waiting`, { token: tokenAdmin });
  const job = (jobs.body.data.jobs as { job_id: string }[] | undefined)?.[0]?.job_id;
  if (!job) throw new Error(`no waiting job: ${JSON.stringify(jobs.body)}`);
  return {
    id,
    p,
    agent,
    stream,
    platform,
    message,
    failedMessage,
    memory,
    pack,
    job,
    agentKeyId: agentKeyRes.body.data.key_id as string,
    agentKey: agentKeyRes.body.data.api_key as string,
    readerKey,
    tokens: {
      tenant_admin: tokenAdmin,
      // Signed by the server's token service like a login's (a login costs a scrypt hash each).
      operator: await app.tokenFor({ role: 'operator', tenantId: id, sub: `${p}_operator` }),
      reader: await app.tokenFor({ role: 'reader', tenantId: id, sub: `${p}_reader` }),
      // Agent users do not exist (agent credentials are keys): a token as the server signs one.
      agent: await app.tokenFor({ role: 'agent', tenantId: id, agentId: agent }),
    },
    usernames,
  };
}

/** How long seeding may take on a loaded machine (passwords are hashed with scrypt at N=2^17). */
export const WORLD_TIMEOUT_MS = 180_000;

/** Starts one app for the calling file and seeds both tenants. */
export async function startWorld(options: Parameters<typeof startTestApp>[0] = {}): Promise<World> {
  const app = await startTestApp(options);
  try {
    const platformAdmin = await app.tokenFor({ role: 'platform_admin' });
    const A = await seedTenant(app, platformAdmin, 'a');
    const B = await seedTenant(app, platformAdmin, 'b');
    return { app, A, B, platformAdmin };
  } catch (err) {
    await app.close();
    throw err;
  }
}

/**
 * Everything stored for one tenant, read as the owner, as comparable text: taken before and after
 * an attack, it shows that nothing of that tenant changed.
 */
export async function snapshotTenant(app: TestApp, tenantId: string): Promise<string> {
  const tables = [
    ['agents', 'agent_id'],
    ['chat_streams', 'chat_stream_id'],
    ['messages', 'message_id'],
    ['memory_chest', 'memory_id'],
    ['emoji_packs', 'pack_id'],
    ['api_keys', 'key_id'],
    ['users', 'username'],
    ['config_entries', 'category'],
  ] as const;
  const parts: string[] = [];
  for (const [table, key] of tables) {
    const { rows } = await app.t.admin<{ row: unknown }>(
      `SELECT to_jsonb(t) - 'last_used_at' AS row FROM ${table} t WHERE tenant_id = $1 ORDER BY ${key}`,
      [tenantId],
    );
    parts.push(`${table}:${JSON.stringify(rows.map((r) => r.row))}`);
  }
  const tenant = await app.t.admin(`SELECT to_jsonb(t) AS row FROM tenants t WHERE tenant_id = $1`, [
    tenantId,
  ]);
  parts.push(`tenant:${JSON.stringify(tenant.rows)}`);
  return parts.join('\n');
}
