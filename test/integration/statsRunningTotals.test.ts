import { type TenantSort, usageByTenant } from '../../src/db/repositories/usageRollups';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { processStatsJob } from '../../src/workers/statsProcessor';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * The running totals `/stats/tenants` reads (migration 013): kept by the hour's stats jobs, they
 * must give exactly what summing the buckets of a period gives, and what the source calls say,
 * whatever order the jobs ran in, across day boundaries, re-runs and purges, per tenant.
 */

let t: TestDatabase;
const H = 3_600_000;
const DAY = 24 * H;
const D0 = Date.UTC(2030, 2, 1);
const TENANTS = ['acme', 'globex', 'initech', 'hooli'];
/** Tenants with calls all along; `hooli` calls only in the first hours (idle after). */
const BUSY = TENANTS.slice(0, 3);
const DAYS = 3;

interface Call {
  tenantId: string;
  agentId: string;
  at: number;
  prompt: number;
  completion: number;
  /** Millionths. */
  micros: number;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = random(1413);
const pick = (n: number) => Math.floor(rand() * n);
const calls: Call[] = [];

async function addCalls(n: number, from: number, to: number, tenant?: string): Promise<Set<string>> {
  const hours = new Set<string>();
  const batch: Call[] = [];
  for (let i = 0; i < n; i++) {
    const c: Call = {
      tenantId: tenant ?? BUSY[pick(BUSY.length)]!,
      agentId: rand() < 0.6 ? 'default' : 'b',
      at: from + pick(to - from),
      prompt: 1 + pick(900),
      completion: pick(300),
      micros: pick(5000),
    };
    batch.push(c);
    hours.add(`${c.tenantId}/${c.at - (c.at % H)}`);
  }
  await t.admin(
    `INSERT INTO llm_usage (tenant_id, agent_id, provider, model_name, request_type, prompt_tokens,
                            completion_tokens, total_tokens, cost, status, created_at)
     SELECT c.t, c.a, 'openai', 'gpt', 'replyer', c.p, c.c, c.p + c.c, c.m / 1e6, 'success', to_timestamp(c.at / 1e3)
     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::float8[]) AS c(t, a, p, c, m, at)`,
    [
      batch.map((c) => c.tenantId),
      batch.map((c) => c.agentId),
      batch.map((c) => c.prompt),
      batch.map((c) => c.completion),
      batch.map((c) => c.micros),
      batch.map((c) => c.at),
    ],
  );
  calls.push(...batch);
  return hours;
}

/** Runs the hour jobs of `hours` (`tenant/start`) in a shuffled order. */
async function runHourJobs(hours: Iterable<string>, retention?: { minuteHours: number; hourDays: number }) {
  const jobs = [...hours];
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
  }
  for (const job of jobs) {
    const [tenantId, start] = job.split('/');
    await processStatsJob(
      { db: t.db, logger: t.logger, ...(retention ? { retention } : {}) },
      { tenantId: tenantId!, granularity: 'hour', bucketStart: Number(start) },
    );
  }
}

type Figures = { llm_requests: number; prompt_tokens: number; completion_tokens: number; cost: number };

/** What the calls themselves say about `[from, to)`, per tenant (cost in millionths, exact). */
function reference(from: number, to: number): Map<string, Figures> {
  const out = new Map<string, Figures>(
    TENANTS.map((id) => [id, { llm_requests: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0 }]),
  );
  for (const c of calls) {
    if (c.at < from || c.at >= to) continue;
    const f = out.get(c.tenantId)!;
    f.llm_requests += 1;
    f.prompt_tokens += c.prompt;
    f.completion_tokens += c.completion;
    f.cost += c.micros;
  }
  return out;
}

/** Summing the buckets of the period (what `/stats/tenants` did before migration 013). */
async function summedBuckets(
  granularity: 'hour' | 'day',
  from: number,
  to: number,
): Promise<Map<string, Figures>> {
  const { rows } = await t.admin<{ tenant_id: string } & Record<string, string>>(
    `SELECT tenant_id, sum(llm_requests) AS llm_requests, sum(prompt_tokens) AS prompt_tokens,
            sum(completion_tokens) AS completion_tokens, round(sum(cost) * 1e6) AS cost
     FROM usage_stats WHERE granularity = $1 AND bucket_start >= $2 AND bucket_start < $3 GROUP BY tenant_id`,
    [granularity, new Date(from), new Date(to)],
  );
  const out = reference(0, 0);
  for (const r of rows) {
    out.set(r.tenant_id, {
      llm_requests: Number(r.llm_requests),
      prompt_tokens: Number(r.prompt_tokens),
      completion_tokens: Number(r.completion_tokens),
      cost: Number(r.cost),
    });
  }
  return out;
}

async function fromTotals(
  granularity: 'hour' | 'day',
  from: number,
  to: number,
  sort: TenantSort = 'tenant_id',
): Promise<Map<string, Figures>> {
  const { rows, total } = await t.db.withPlatform((db) =>
    usageByTenant(db, {
      granularity,
      from: new Date(from),
      to: new Date(to),
      sort,
      order: 'asc',
      limit: 100,
      offset: 0,
    }),
  );
  // Every tenant is listed (the migrations' `default` too, without figures).
  expect(total).toBe(TENANTS.length + 1);
  const others = rows.filter((r) => !TENANTS.includes(r.tenantId));
  expect(others.map((r) => [r.tenantId, r.llmRequests, r.promptTokens, r.cost])).toEqual([
    ['default', 0, 0, 0],
  ]);
  return new Map(
    rows
      .filter((r) => TENANTS.includes(r.tenantId))
      .map((r) => [
        r.tenantId,
        {
          llm_requests: r.llmRequests,
          prompt_tokens: r.promptTokens,
          completion_tokens: r.completionTokens,
          cost: Math.round(r.cost * 1e6),
        },
      ]),
  );
}

/** Random periods of whole buckets inside `[lo, hi)`, plus the edges. */
function periods(size: number, lo: number, hi: number, n: number): [number, number][] {
  const buckets = (hi - lo) / size;
  const out: [number, number][] = [
    [lo, hi],
    [lo, lo + size],
    [hi - size, hi],
  ];
  for (let i = 0; i < n; i++) {
    const a = pick(buckets + 1);
    const b = pick(buckets + 1);
    out.push([lo + Math.min(a, b) * size, lo + Math.max(a, b) * size]);
  }
  return out;
}

beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin(`INSERT INTO tenants (tenant_id, name) SELECT id, initcap(id) FROM unnest($1::text[]) id`, [
    TENANTS,
  ]);
  await t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) SELECT id, 'b', 'B' FROM unnest($1::text[]) id`,
    [TENANTS],
  );
  // Three days of calls, their hour jobs in a shuffled order; then late calls into hours that
  // were rolled up already (their jobs run again, after the later hours' jobs).
  await runHourJobs(await addCalls(6, D0 + H, D0 + 3 * H, 'hooli'));
  await runHourJobs(await addCalls(300, D0, D0 + DAYS * DAY));
  await runHourJobs(await addCalls(40, D0, D0 + DAYS * DAY));
}, 180_000); // ~200 hour jobs one after the other: seconds on an idle machine, more on a busy one
afterAll(async () => {
  await t.close();
});

it('per tenant, a period read from the running totals equals the summed buckets and the calls (hours)', async () => {
  for (const [from, to] of periods(H, D0, D0 + DAYS * DAY, 40)) {
    const expected = reference(from, to);
    expect(await summedBuckets('hour', from, to)).toEqual(expected);
    expect(await fromTotals('hour', from, to)).toEqual(expected);
  }
});

it('per tenant, a period read from the running totals equals the summed buckets and the calls (days)', async () => {
  for (const [from, to] of periods(DAY, D0, D0 + DAYS * DAY, 10)) {
    const expected = reference(from, to);
    expect(await summedBuckets('day', from, to)).toEqual(expected);
    expect(await fromTotals('day', from, to)).toEqual(expected);
  }
  // Periods reaching before the first and after the last bucket.
  const all = reference(0, Number.MAX_SAFE_INTEGER);
  expect(await fromTotals('day', D0 - 30 * DAY, D0 + 60 * DAY)).toEqual(all);
  expect(await fromTotals('hour', D0 - 30 * DAY, D0 + 60 * DAY)).toEqual(all);
  expect(await fromTotals('day', D0 - 30 * DAY, D0)).toEqual(reference(0, 0));
});

it('sorts and pages by the period figures', async () => {
  const from = D0 + DAY;
  const to = D0 + 3 * DAY;
  const expected = reference(from, to);
  const { rows } = await t.db.withPlatform((db) =>
    usageByTenant(db, {
      granularity: 'day',
      from: new Date(from),
      to: new Date(to),
      sort: 'tokens',
      order: 'desc',
      limit: 2,
      offset: 0,
    }),
  );
  const byTokens = [...expected]
    .map(([id, f]) => [id, f.prompt_tokens + f.completion_tokens] as const)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : -1));
  expect(rows.map((r) => [r.tenantId, r.promptTokens + r.completionTokens])).toEqual(byTokens.slice(0, 2));
});

it('a tenant reads only its own running totals, and its jobs write only its own', async () => {
  const own = await t.db.withTenant(createIsolationContext({ tenantId: 'acme' }), (db) =>
    db.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM usage_tenant_totals'),
  );
  expect(own.rows).toEqual([{ tenant_id: 'acme' }]);
  const before = await t.admin(
    `SELECT * FROM usage_tenant_totals WHERE tenant_id <> 'acme' ORDER BY tenant_id, granularity, bucket_start`,
  );
  expect(before.rowCount).toBeGreaterThan(0);
  await runHourJobs([`acme/${D0 + 2 * DAY + 5 * H}`, `acme/${D0 + 4 * DAY}`]);
  const after = await t.admin(
    `SELECT * FROM usage_tenant_totals WHERE tenant_id <> 'acme' ORDER BY tenant_id, granularity, bucket_start`,
  );
  expect(after.rows).toEqual(before.rows);
});

it('keeps periods inside hour retention exact after the purge (the last purged total is the base)', async () => {
  // Retention of 2 days counted back from the last hour: the first 2 days of hours go.
  const last = D0 + DAYS * DAY - H;
  const retention = { minuteHours: 48, hourDays: 2 };
  await runHourJobs(
    TENANTS.map((id) => `${id}/${last}`),
    retention,
  );
  const cut = last - 2 * DAY;
  const { rows } = await t.admin<{ n: string }>(
    `SELECT count(*) AS n FROM usage_stats WHERE granularity = 'hour' AND bucket_start < $1`,
    [new Date(cut)],
  );
  expect(Number(rows[0]!.n)).toBe(0);
  const kept = await t.admin<{ tenant_id: string; n: string }>(
    `SELECT tenant_id, count(*) AS n FROM usage_tenant_totals
     WHERE granularity = 'hour' AND bucket_start < $1 GROUP BY 1 ORDER BY 1`,
    [new Date(cut)],
  );
  expect(kept.rows.map((r) => Number(r.n))).toEqual(TENANTS.map(() => 1));
  for (const [from, to] of periods(H, cut, D0 + DAYS * DAY, 20)) {
    expect(await fromTotals('hour', from, to)).toEqual(reference(from, to));
  }
  // Late calls into a retained hour: its job rewrites the totals from the kept base.
  const hours = await addCalls(30, cut + H, cut + 2 * H);
  await runHourJobs(hours, retention);
  expect(await fromTotals('hour', cut, D0 + DAYS * DAY)).toEqual(reference(cut, D0 + DAYS * DAY));
  expect(await fromTotals('day', D0, D0 + DAYS * DAY, 'cost')).toEqual(reference(D0, D0 + DAYS * DAY));
});
