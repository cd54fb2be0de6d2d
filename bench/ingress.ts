/**
 * Ingress benchmark (`npm run bench:ingress`): autocannon against `POST /api/v1/chat/send` (JWT
 * auth, zod validation, admission checks, durable BullMQ enqueue) and, in the same run and the same
 * child-process setup, against the baseline a user would write without MaiHive — an Express route
 * that parses the JSON body and calls `queue.add` on one BullMQ queue — and, as the floor, a bare
 * Express JSON echo route. The targets are ratios against the `queue.add` baseline. Rounds
 * alternate their order to cancel machine noise. Then 100k sends and the API process's RSS.
 * Writes bench/results/ingress-*.json.
 *
 * Both children run compiled JavaScript, as the deployment does (`dist/` under pm2): the child and
 * the sources it imports are compiled with tsc into bench/results/ingress-build first
 * (BENCH_TSX=1 runs them through tsx instead, which adds tsx's own memory and start-up to every
 * figure), with the API role's deployment Node flags (`node_args` of ecosystem.config.js) plus
 * `--expose-gc` (used only when the RSS phase asks for a collection), at LOG_LEVEL silent. Each
 * round also records the server child's CPU time and Redis's (INFO cpu): on a small shared machine
 * CPU per request is steadier than requests per second, and shows where the time goes.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import autocannon from 'autocannon';
import { Redis } from 'ioredis';

import { TokenService } from '../src/auth/tokens';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, withClient, withDatabase } from './lib/dataset';
import type { ChildStats } from './lib/ingressServer';
import { type CpuProfile, perRequest, stageTimes } from './lib/profileStages';
import { formatTable } from './lib/stats';

const DATABASE = 'maihive_bench_ingress';
const PREFIX = 'mhbench';
const RUN = {
  connections: 100,
  durationS: Number(process.env.BENCH_DURATION_S ?? 10),
  rounds: 2,
  warmupS: 2,
};
const RSS_SENDS = Number(process.env.BENCH_RSS_SENDS ?? 100_000);
const TARGETS = { throughputRatio: 0.6, p99Ratio: 2, maxRssMb: 150 };

type Mode = 'app' | 'queue' | 'echo';
const MODES: readonly Mode[] = ['app', 'queue', 'echo'];
const JWT_SECRET = 'bench-secret-bench-secret-bench-secret-0123';

/** The API role's Node flags as pm2 runs it, so the bench measures the deployment setting. */
function deploymentNodeFlags(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ecosystem = require('../ecosystem.config.js') as { apps: { name: string; node_args?: string }[] };
  const api = ecosystem.apps.find((a) => a.name === 'maihive-api');
  return (api?.node_args ?? '').split(/\s+/).filter((f) => f !== '');
}
// BENCH_CHILD_FLAGS adds flags to the children; BENCH_PROFILE_DIR=<dir> writes a CPU profile of each
// measured run (warm-up and start-up left out) there, BENCH_HEAP_PROFILE_DIR=<dir> its allocation samples.
const EXTRA_FLAGS = (process.env.BENCH_CHILD_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');
const THROUGH_TSX = process.env.BENCH_TSX === '1';
const NODE_FLAGS = [
  ...deploymentNodeFlags(),
  ...(THROUGH_TSX ? ['--import', 'tsx'] : []),
  '--expose-gc',
  ...EXTRA_FLAGS,
];
const BUILD_DIR = path.join(__dirname, 'results', 'ingress-build');

/**
 * The child's script: bench/lib/ingressServer.ts compiled with everything it imports from src/
 * (tsc, the project's own settings), or the TypeScript itself under BENCH_TSX=1.
 */
async function childScript(): Promise<string> {
  const source = path.join(__dirname, 'lib', 'ingressServer.ts');
  if (THROUGH_TSX) return source;
  await mkdir(BUILD_DIR, { recursive: true });
  const tsconfig = {
    extends: path.relative(BUILD_DIR, path.join(__dirname, '..', 'tsconfig.json')),
    compilerOptions: { noEmit: false, outDir: '.', rootDir: '../../..', incremental: false },
    files: [path.relative(BUILD_DIR, source)],
    include: [],
  };
  await writeFile(path.join(BUILD_DIR, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(BUILD_DIR, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`compiling the bench server failed (tsc exit ${result.status})`);
  return path.join(BUILD_DIR, 'bench', 'lib', 'ingressServer.js');
}
let CHILD_SCRIPT = '';

interface Child {
  port: number;
  process: ChildProcess;
}

function startServer(mode: Mode, env: NodeJS.ProcessEnv): Promise<Child> {
  const child = fork(CHILD_SCRIPT, ['--mode', mode], {
    env: { ...process.env, ...env },
    execArgv: NODE_FLAGS,
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
    child.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'ready') resolve({ port: m.port!, process: child });
    });
  });
}

function stopServer(child: Child): Promise<void> {
  return new Promise((resolve) => {
    child.process.removeAllListeners('exit');
    child.process.once('exit', () => resolve());
    child.process.send({ type: 'close' });
  });
}

function statsOf(child: Child, gc = false): Promise<ChildStats> {
  return new Promise((resolve) => {
    const onMessage = (m: { type: string }) => {
      if (m.type !== 'stats') return;
      child.process.off('message', onMessage);
      resolve(m as ChildStats);
    };
    child.process.on('message', onMessage);
    child.process.send({ type: 'stats', gc });
  });
}

/**
 * Waits until the server has finished the requests a run left behind: autocannon closes its
 * connections at the end of a run, but what the server had started goes on, and would otherwise
 * overlap the next run's 100 connections (up to 200 requests of one tenant in progress at once,
 * over its `ingress_max_in_flight` of 128).
 */
async function drained(child: Child): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await statsOf(child)).inFlight > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts or stops the child's CPU profiler (BENCH_PROFILE_DIR) or allocation sampling
 * (BENCH_HEAP_PROFILE_DIR, `type: 'heap'`), waiting for its answer.
 */
function profileChild(child: Child, message: object, type: 'profile' | 'heap' = 'profile'): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: { type: string }) => {
      if (m.type !== 'profiled') return;
      child.process.off('message', onMessage);
      resolve();
    };
    child.process.on('message', onMessage);
    child.process.send({ type, ...message });
  });
}

/** Redis's own CPU time so far, µs (Redis runs on the same machine and competes for it). */
async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

function cannon(port: number, token: string, opts: { durationS?: number; amount?: number }) {
  return autocannon({
    url: `http://127.0.0.1:${port}/api/v1/chat/send`,
    method: 'POST',
    connections: RUN.connections,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.durationS ?? RUN.durationS }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    // `[<id>]` becomes a fresh id per request: every send is a new message with its own idempotency key.
    body: JSON.stringify({
      message: '性能测试消息 benchmark message',
      chat_stream_id: 'bench_chat',
      platform: 'qq',
      client_message_id: '[<id>]',
      sender_info: { user_id: 'u1', username: 'bench' },
    }),
    idReplacement: true,
  });
}

interface Summary {
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non_2xx: number;
  /** 429 answers (the ingress governor's sheds, rate or queue refusals). */
  status_429: number;
  /** Requests the ingress governor refused during the run (app mode). */
  shed: number;
  errors: number;
  total: number;
  /** Redis commands the server sent per request, in all and by command (≥ 0.05 per request). */
  redis_commands_per_req: number;
  redis_commands_by_name: Record<string, number>;
  /** Garbage collections during the run: per 1000 requests, ms of pause per request, longest ms. */
  gc: { per_1000_req: number; pause_us_per_req: number; max_ms: number };
  /** Event-loop delay windows (p99 of 500 ms, as the ingress gate reads it) over 200 ms, and the worst. */
  loop_delay: { windows: number; over_200ms: number; worst_p99_ms: number };
  /** Server child CPU (user + system) per request, µs. */
  server_cpu_us_per_req: number;
  /** Server child CPU over the round, % of one core. */
  server_cpu_pct: number;
  /** Redis CPU per request, µs (includes anything else using that Redis meanwhile). */
  redis_cpu_us_per_req: number;
  /** Server CPU per request split by stage, µs (only with BENCH_PROFILE_DIR). */
  stages_us_per_req?: Record<string, number>;
}

interface Usage {
  serverCpuUs: number;
  redisCpuUs: number;
  wallMs: number;
  /** The child's figures before and after the run. */
  before: ChildStats;
  after: ChildStats;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function commandsPerRequest(usage: Usage, total: number) {
  const byName: Record<string, number> = {};
  let all = 0;
  for (const [name, n] of Object.entries(usage.after.redisCommands)) {
    const delta = n - (usage.before.redisCommands[name] ?? 0);
    all += delta;
    if (delta / total >= 0.05) byName[name] = round2(delta / total);
  }
  return { all: round2(all / total), byName };
}

function summarise(r: autocannon.Result, usage: Usage): Summary {
  const total = Math.max(1, r.requests.total);
  const { before, after } = usage;
  const commands = commandsPerRequest(usage, total);
  const statusCodes = (r as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {};
  return {
    requests_per_s: Math.round(r.requests.average),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    non_2xx: r.non2xx,
    status_429: statusCodes['429']?.count ?? 0,
    shed: after.shed - before.shed,
    errors: r.errors + r.timeouts,
    total: r.requests.total,
    redis_commands_per_req: commands.all,
    redis_commands_by_name: commands.byName,
    gc: {
      per_1000_req: round2(((after.gc.count - before.gc.count) / total) * 1000),
      pause_us_per_req: Math.round(((after.gc.totalMs - before.gc.totalMs) * 1000) / total),
      // The longest pause since the child started (warm-up included).
      max_ms: round2(after.gc.maxMs),
    },
    loop_delay: {
      windows: after.loop.windows - before.loop.windows,
      over_200ms: after.loop.over200 - before.loop.over200,
      worst_p99_ms: Math.round(after.loop.worstP99Ms),
    },
    server_cpu_us_per_req: Math.round(usage.serverCpuUs / total),
    server_cpu_pct: Math.round((usage.serverCpuUs / 1000 / usage.wallMs) * 100),
    redis_cpu_us_per_req: Math.round(usage.redisCpuUs / total),
  };
}

/** Runs autocannon and measures the server's and Redis's CPU time over exactly that run. */
async function measured(child: Child, redis: Redis, run: () => PromiseLike<autocannon.Result>) {
  const [before, redis0, t0] = [await statsOf(child), await redisCpuUs(redis), Date.now()];
  const result = await run();
  const [after, redis1, t1] = [await statsOf(child), await redisCpuUs(redis), Date.now()];
  return summarise(result, {
    serverCpuUs: after.cpuUs - before.cpuUs,
    redisCpuUs: redis1 - redis0,
    wallMs: t1 - t0,
    before,
    after,
  });
}

function merge(runs: Summary[]): Summary {
  const mean = (f: (s: Summary) => number) => runs.reduce((a, s) => a + f(s), 0) / runs.length;
  return {
    requests_per_s: Math.round(mean((s) => s.requests_per_s)),
    p50_ms: mean((s) => s.p50_ms),
    p99_ms: mean((s) => s.p99_ms),
    non_2xx: runs.reduce((a, s) => a + s.non_2xx, 0),
    status_429: runs.reduce((a, s) => a + s.status_429, 0),
    shed: runs.reduce((a, s) => a + s.shed, 0),
    errors: runs.reduce((a, s) => a + s.errors, 0),
    total: runs.reduce((a, s) => a + s.total, 0),
    redis_commands_per_req: round2(mean((s) => s.redis_commands_per_req)),
    redis_commands_by_name: runs[runs.length - 1]?.redis_commands_by_name ?? {},
    gc: {
      per_1000_req: round2(mean((s) => s.gc.per_1000_req)),
      pause_us_per_req: Math.round(mean((s) => s.gc.pause_us_per_req)),
      max_ms: Math.max(...runs.map((s) => s.gc.max_ms)),
    },
    loop_delay: {
      windows: runs.reduce((a, s) => a + s.loop_delay.windows, 0),
      over_200ms: runs.reduce((a, s) => a + s.loop_delay.over_200ms, 0),
      worst_p99_ms: Math.max(...runs.map((s) => s.loop_delay.worst_p99_ms)),
    },
    server_cpu_us_per_req: Math.round(mean((s) => s.server_cpu_us_per_req)),
    server_cpu_pct: Math.round(mean((s) => s.server_cpu_pct)),
    redis_cpu_us_per_req: Math.round(mean((s) => s.redis_cpu_us_per_req)),
    ...(runs.every((s) => s.stages_us_per_req) ? { stages_us_per_req: meanStages(runs) } : {}),
  };
}

/** A route's line in the printed summary. */
function tableRow(route: string, s: Summary): string[] {
  return [
    route,
    String(s.requests_per_s),
    s.p50_ms.toFixed(1),
    s.p99_ms.toFixed(1),
    String(s.non_2xx),
    String(s.status_429),
    String(s.shed),
    String(s.errors),
    String(s.server_cpu_us_per_req),
    String(s.redis_cpu_us_per_req),
    String(s.redis_commands_per_req),
    String(s.gc.pause_us_per_req),
    `${s.loop_delay.over_200ms}/${s.loop_delay.windows} (${s.loop_delay.worst_p99_ms})`,
  ];
}

function meanStages(runs: Summary[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const run of runs) {
    for (const [stage, us] of Object.entries(run.stages_us_per_req!)) sums[stage] = (sums[stage] ?? 0) + us;
  }
  const entries = Object.entries(sums).map(([stage, us]) => [stage, Math.round(us / runs.length)] as const);
  return Object.fromEntries(entries.sort((a, b) => b[1] - a[1]));
}

async function prepareTenant(adminUrl: string): Promise<void> {
  // Limits far above what the benchmark sends, so it measures the path, not the 429s.
  const settings = {
    rate_limit_per_second: 1_000_000,
    credential_rate_limit_per_second: 1_000_000,
    scheduling: { max_queue_size: 100_000_000 },
    max_chat_streams: 1_000_000,
  };
  await withClient(adminUrl, (c) =>
    c.query(`INSERT INTO tenants (tenant_id, name, settings) VALUES ('bench', 'Bench', $1)`, [
      JSON.stringify(settings),
    ]),
  );
}

async function clearRedis(url: string): Promise<void> {
  const redis = new Redis(url);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

async function main(): Promise<void> {
  CHILD_SCRIPT = await childScript();
  const config = loadConfig({ ...process.env, NODE_ENV: 'development' });
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: 'postgres' });
  try {
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
    await prepareTenant(adminUrl);
    await clearRedis(services.redisUrl);
    const env = {
      JWT_SECRET,
      REDIS_PREFIX: PREFIX,
      BENCH_DATABASE_URL: withDatabase(services.databaseUrl, DATABASE),
      BENCH_REDIS_URL: services.redisUrl,
      NODE_ENV: 'production',
    };
    const tokens = new TokenService({ secret: JWT_SECRET, accessTtlSeconds: 3600 });
    const { token } = await tokens.issueAccessToken({
      sub: 'bench',
      role: 'tenant_admin',
      tenantId: 'bench',
    });

    const redis = new Redis(services.redisUrl);
    const runs: Record<Mode, Summary[]> = { app: [], queue: [], echo: [] };
    for (let round = 0; round < RUN.rounds; round++) {
      const order = round % 2 === 0 ? MODES : [...MODES].reverse();
      for (const mode of order) {
        const child = await startServer(mode, env);
        await cannon(child.port, token, { durationS: RUN.warmupS });
        await drained(child);
        const profileDir = process.env.BENCH_PROFILE_DIR;
        const heapDir = process.env.BENCH_HEAP_PROFILE_DIR;
        if (profileDir) await profileChild(child, { action: 'start' });
        if (heapDir) await profileChild(child, { action: 'start' }, 'heap');
        const result = await measured(child, redis, () => cannon(child.port, token, {}));
        if (heapDir) {
          const file = path.join(heapDir, `ingress-${mode}-round${round + 1}.heapprofile`);
          await profileChild(child, { action: 'stop', file }, 'heap');
        }
        if (profileDir) {
          const file = path.join(profileDir, `ingress-${mode}-round${round + 1}.cpuprofile`);
          await profileChild(child, { action: 'stop', file });
          const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
          result.stages_us_per_req = perRequest(stageTimes(profile), result.server_cpu_us_per_req);
        }
        runs[mode].push(result);
        console.log(
          `round ${round + 1} ${mode}: ${result.requests_per_s} req/s, p99 ${result.p99_ms} ms, ` +
            `server ${result.server_cpu_us_per_req} µs/req (${result.server_cpu_pct}% of a core), ` +
            `redis ${result.redis_cpu_us_per_req} µs/req, ${result.redis_commands_per_req} commands/req ` +
            `${JSON.stringify(result.redis_commands_by_name)}, 429 ${result.status_429} (shed ${result.shed}), ` +
            `gc ${result.gc.pause_us_per_req} µs/req (longest ${result.gc.max_ms} ms), loop windows over 200 ms ` +
            `${result.loop_delay.over_200ms}/${result.loop_delay.windows} (worst p99 ${result.loop_delay.worst_p99_ms} ms)` +
            ` [load ${os.loadavg()[0]!.toFixed(1)}]`,
        );
        await stopServer(child);
      }
    }
    const app = merge(runs.app);
    const baseline = merge(runs.queue);
    const echo = merge(runs.echo);

    const child = await startServer('app', env);
    const memBefore = await statsOf(child);
    const bulk = await measured(child, redis, () => cannon(child.port, token, { amount: RSS_SENDS }));
    // As left by the run (what the target is judged on), then after a full collection (what is live).
    const memAfter = await statsOf(child);
    const memAfterGc = await statsOf(child, true);
    await stopServer(child);
    redis.disconnect();
    await clearRedis(services.redisUrl);
    const rssAfter = memAfter.rss;
    const memory = (s: ChildStats) => ({
      rss_mb: mb(s.rss),
      heap_used_mb: mb(s.heapUsed),
      heap_total_mb: mb(s.heapTotal),
      external_mb: mb(s.external),
    });

    const ratios = {
      throughput: {
        value: app.requests_per_s / baseline.requests_per_s,
        target: `>= ${TARGETS.throughputRatio}`,
      },
      p99: { value: app.p99_ms / baseline.p99_ms, target: `<= ${TARGETS.p99Ratio}` },
      cpu_per_request: { value: app.server_cpu_us_per_req / baseline.server_cpu_us_per_req },
      throughput_vs_echo: { value: app.requests_per_s / echo.requests_per_s },
    };
    const pass = {
      throughput: ratios.throughput.value >= TARGETS.throughputRatio,
      p99: ratios.p99.value <= TARGETS.p99Ratio,
      zero_non_2xx: app.non_2xx === 0 && app.errors === 0 && bulk.non_2xx === 0,
      rss: rssAfter / 2 ** 20 <= TARGETS.maxRssMb,
    };
    const report = {
      benchmark: 'ingress',
      finished_at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
      settings: { ...RUN, node_flags: NODE_FLAGS, compiled: !THROUGH_TSX },
      send: app,
      baseline_queue_add: baseline,
      echo,
      runs,
      ratios,
      rss: {
        sends: RSS_SENDS,
        before_mb: mb(memBefore.rss),
        after_mb: mb(rssAfter),
        peak_mb: mb(memAfter.maxRss),
        after_gc_mb: mb(memAfterGc.rss),
        memory: { before: memory(memBefore), after: memory(memAfter), after_gc: memory(memAfterGc) },
        bulk,
      },
      pass,
    };
    const dir = path.join(__dirname, 'results');
    await mkdir(dir, { recursive: true });
    const stamp = report.finished_at.replace(/[:.]/g, '-');
    const json = JSON.stringify(report, null, 2);
    await writeFile(path.join(dir, `ingress-${stamp}.json`), json);
    await writeFile(path.join(dir, 'ingress-latest.json'), json);
    console.log(
      formatTable([
        [
          'route',
          'req/s',
          'p50 ms',
          'p99 ms',
          'non-2xx',
          '429',
          'shed',
          'errors',
          'server µs/req',
          'redis µs/req',
          'redis cmds/req',
          'gc µs/req',
          'loop >200ms (worst)',
        ],
        tableRow('POST /chat/send', app),
        tableRow('Express + queue.add', baseline),
        tableRow('bare echo', echo),
      ]),
    );
    console.log(
      `throughput ratio vs queue.add ${ratios.throughput.value.toFixed(3)} (target >= ${TARGETS.throughputRatio}) ${pass.throughput ? 'PASS' : 'FAIL'}` +
        ` (vs bare echo ${ratios.throughput_vs_echo.value.toFixed(3)})`,
    );
    console.log(
      `p99 ratio vs queue.add        ${ratios.p99.value.toFixed(3)} (target <= ${TARGETS.p99Ratio}) ${pass.p99 ? 'PASS' : 'FAIL'}`,
    );
    console.log(
      `RSS after ${RSS_SENDS} sends: ${(rssAfter / 2 ** 20).toFixed(1)} MB (target <= 150) ${pass.rss ? 'PASS' : 'FAIL'}` +
        ` (peak ${mb(memAfter.maxRss)} MB, after a full GC ${mb(memAfterGc.rss)} MB, heap used ${mb(memAfterGc.heapUsed)} MB)`,
    );
    console.log(`non-2xx/errors: ${app.non_2xx}/${app.errors} (bulk ${bulk.non_2xx}/${bulk.errors})`);
    if (app.stages_us_per_req && baseline.stages_us_per_req) {
      const stages = Object.keys({ ...app.stages_us_per_req, ...baseline.stages_us_per_req });
      console.log('\nserver CPU per request by stage, µs (from the CPU profiles of the measured runs):');
      console.log(
        formatTable([
          ['stage', 'POST /chat/send', 'Express + queue.add'],
          ...stages.map((stage) => [
            stage,
            String(app.stages_us_per_req![stage] ?? 0),
            String(baseline.stages_us_per_req![stage] ?? 0),
          ]),
        ]),
      );
    }
  } finally {
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
