/**
 * A Redis Cluster master crashes under load and its replica takes over: a private cluster of 3
 * masters with a replica each (`cluster-node-timeout` 2000 ms), the whole system in one npm-start
 * process on it, clients sending continuously over HTTP to tenants on every master, and a SIGKILL
 * of the master serving one tenant's hash slot mid-run.
 *
 * What must hold: the replica is promoted; every answer during the switch is a 2xx or a 503 with
 * `Retry-After` (never another status, never a request hanging past the bound); sends to that
 * tenant are accepted again after the switch; and every accepted message reaches `replied`.
 */
import calculateSlot from 'cluster-key-slot';

import { createLogger } from '../../src/logger';
import { type RedisCluster, startRedisCluster } from '../support/redisCluster';
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';
import { waitFor } from '../support/waitFor';

/** A send answered later than this counts as hung (the send path's own budget is 4 s). */
const ANSWER_BOUND_MS = 10_000;
const TENANTS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];

let cluster: RedisCluster;
let h: RuntimeHarness;
const apiKeys = new Map<string, string>();
/** The runtime's error log lines (parsed), so that an unexpected answer comes with its cause. */
const errorLog: {
  request_id?: string;
  msg?: string;
  err?: { type?: string; message?: string; stack?: string };
}[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2000 });
  const logger = createLogger({
    level: 'error',
    destination: {
      write: (line: string) => void errorLog.push(JSON.parse(line) as (typeof errorLog)[number]),
    },
  });
  h = await startRuntimeHarness({ redisUrl: cluster.url, logger });
  for (const t of TENANTS) {
    apiKeys.set(t, await h.tenantWithKey(t));
    // The bot answers to 麦麦 on qq: every message below mentions it, so every one gets a reply.
    const login = await h.call('POST', '/auth/login', {
      body: { tenant_id: t, username: 'owner', password: `${t}-admin-password` },
    });
    const configured = await h.call('PUT', '/agents/default/config', {
      bearer: login.data.access_token as string,
      body: { accounts: [{ platform: 'qq', account_id: '1145141919', nickname: '麦麦' }] },
    });
    if (configured.status !== 200) throw new Error(`configuring ${t}'s agent: ${configured.status}`);
  }
}, 90_000);

afterAll(async () => {
  try {
    await h?.close();
  } finally {
    await cluster?.close();
  }
}, 30_000);

interface Answer {
  tenant: string;
  /** 0: no answer within the bound, or the connection failed. */
  status: number;
  retryAfter: string | null;
  ms: number;
  /** ms since the run started, when the request was sent. */
  at: number;
  messageId?: string;
  /** The envelope's request id, when the answer was not a success (to find its logged cause). */
  requestId?: string;
}

async function send(tenant: string, i: number, t0: number): Promise<Answer> {
  const at = Date.now() - t0;
  try {
    const res = await fetch(`${h.runtime.url}/api/v1/chat/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKeys.get(tenant)! },
      body: JSON.stringify({ message: `@麦麦 failover ${i}`, chat_stream_id: `f-${i % 5}`, platform: 'qq' }),
      signal: AbortSignal.timeout(ANSWER_BOUND_MS),
    });
    const body = (await res.json()) as { data?: { message_id?: string }; request_id?: string };
    return {
      tenant,
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      ms: Date.now() - t0 - at,
      at,
      ...(body.data?.message_id ? { messageId: body.data.message_id } : {}),
      ...(res.ok || !body.request_id ? {} : { requestId: body.request_id }),
    };
  } catch {
    return { tenant, status: 0, retryAfter: null, ms: Date.now() - t0 - at, at };
  }
}

describe('a Redis Cluster master fails over under load', () => {
  it('answers 2xx or 503 with Retry-After during the switch and loses no accepted message', async () => {
    // The victim: the master serving the first tenant's hash slot; the tenants on other masters
    // must go on being served throughout.
    const victimTenant = TENANTS[0]!;
    const victim = await cluster.masterOfSlot(calculateSlot(`{${victimTenant}}`));
    const [replica] = await cluster.replicasOf(victim);
    expect(replica).toBeDefined();
    const onVictim = new Set<string>();
    for (const t of TENANTS)
      if ((await cluster.masterOfSlot(calculateSlot(`{${t}}`))) === victim) onVictim.add(t);
    expect(onVictim.size).toBeLessThan(TENANTS.length);

    const t0 = Date.now();
    const answers: Answer[] = [];
    let stop = false;
    let n = 0;
    // Closed-loop senders, one per tenant, each sending its next message once the last is answered.
    const senders = TENANTS.map(async (tenant) => {
      while (!stop) {
        const a = await send(tenant, n++, t0);
        answers.push(a);
        if (a.status === 503) await new Promise((r) => setTimeout(r, 100));
      }
    });
    const acceptedAfter = (from: number, tenant: string) =>
      answers.filter((a) => a.tenant === tenant && a.at >= from && a.status === 200).length;

    try {
      await waitFor(() => (acceptedAfter(0, victimTenant) >= 10 ? true : undefined), 20_000);
      const killedAt = Date.now() - t0;
      await cluster.kill(victim);
      // The replica is elected once the master has been unreachable for the node timeout.
      await waitFor(
        async () =>
          (await cluster.masterOfSlot(calculateSlot(`{${victimTenant}}`))) === replica ? true : undefined,
        20_000,
      );
      const promotedAt = Date.now() - t0;
      expect(await cluster.masterPorts()).toContain(replica);
      // Sends to the victim's slots are accepted again (the clients re-learn the slot map).
      await waitFor(() => (acceptedAfter(promotedAt, victimTenant) >= 10 ? true : undefined), 20_000);
      stop = true;
      await Promise.all(senders);

      const unexpected = answers
        .filter(
          (a) => !(a.status >= 200 && a.status < 300) && !(a.status === 503 && Number(a.retryAfter) >= 1),
        )
        .map((a) => ({
          ...a,
          // What the process logged for that request: the cause of a 500.
          logged: errorLog
            .filter((l) => a.requestId !== undefined && l.request_id === a.requestId)
            .map((l) => `${l.msg}: ${l.err?.type} ${l.err?.message}\n${l.err?.stack}`),
        }));
      expect(unexpected).toEqual([]);
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(ANSWER_BOUND_MS);

      const accepted = answers.filter((a) => a.messageId !== undefined).map((a) => a.messageId!);
      const statuses = async () => {
        const { rows } = await h.t.admin<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM messages
            WHERE message_id = ANY($1::text[]) AND direction = 'in' GROUP BY status`,
          [accepted],
        );
        return Object.fromEntries(rows.map((r) => [r.status, r.n]));
      };
      await waitFor(
        async () => ((await statuses()).replied === accepted.length ? true : undefined),
        30_000,
      ).catch(async (err: unknown) => {
        throw new Error(`${String(err)}: ${accepted.length} accepted, ${JSON.stringify(await statuses())}`);
      });
      const refused = answers.filter((a) => a.status === 503);
      process.stdout.write(
        `failover: killed ${victim} at ${killedAt} ms, ${replica} master at ${promotedAt} ms; ` +
          `${answers.length} answers, ${accepted.length} accepted, ${refused.length} × 503 ` +
          `(${refused.filter((a) => onVictim.has(a.tenant)).length} on the failed master's tenants), ` +
          `slowest ${Math.max(...answers.map((a) => a.ms))} ms\n`,
      );
    } finally {
      stop = true;
      await Promise.all(senders);
    }
  }, 60_000);
});
