import { z } from 'zod';

import { JwtKeyError, type JwtKeySet, readJwtKeySet } from './jwtKeys';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list: items trimmed, empty ones dropped. */
const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== ''),
);

/**
 * Every environment variable MaiHive reads, parsed once at boot. No other module reads `process.env`.
 * Names and defaults follow `API.md` § Operations interface.
 */
/** An operator listener of `MAIM_LISTENERS`: by Host header name, or by port. */
export interface MaimListener {
  host?: string;
  port?: number;
  tenantId: string;
  agentId: string;
}

/** One `MAIM_LISTENERS` entry, `<host name>=<tenant>/<agent>` or `:<port>=<tenant>/<agent>`; undefined when malformed. */
function parseListener(entry: string): MaimListener | undefined {
  const id = '[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}';
  const m = new RegExp(`^([^=\\s]+)=(${id})/(${id})$`).exec(entry);
  if (!m) return undefined;
  const [, where, tenantId, agentId] = m as unknown as [string, string, string, string];
  if (where.startsWith(':')) {
    const port = Number(where.slice(1));
    return /^:\d{1,5}$/.test(where) && port >= 1 && port <= 65535 ? { port, tenantId, agentId } : undefined;
  }
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(where)
    ? { host: where.toLowerCase(), tenantId, agentId }
    : undefined;
}

const EnvSchema = z.object({
  /** `development` | `test` | `production`. Production disables the private-server launcher. Default `development`. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** PostgreSQL URL of the application role (owns nothing, no BYPASSRLS). Default: derived by the launcher. */
  DATABASE_URL: z.string().url().optional(),
  /** PostgreSQL URL of the schema owner, used to migrate and to create/grant the app role. Default: launcher. */
  DATABASE_ADMIN_URL: z.string().url().optional(),
  /** Name of the application login role that migrations create and grant to. Default `maihive_app`. */
  MAIHIVE_APP_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .default('maihive_app'),
  /** Redis URL, or a Redis Cluster's seed nodes (`redis-cluster://h1:p1,h2:p2`; parsed in redis/connect.ts). Default: launcher. */
  REDIS_URL: z
    .string()
    .refine((v) =>
      /^rediss?-cluster:\/\/([^@/]*@)?[^,@/:]+:\d{1,5}(,[^,@/:]+:\d{1,5})*\/?$/.test(v)
        ? true
        : /^rediss?:\/\//.test(v) && URL.canParse(v),
    )
    .optional(),
  /** HTTP listen address. Default `127.0.0.1`. */
  HOST: z.string().default('127.0.0.1'),
  /** HTTP listen port; 0 picks a free one. Default `8080`. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** HS256 signing secret, at least 32 bytes. Required in production; generated per data dir otherwise. */
  JWT_SECRET: z.string().min(32).optional(),
  /**
   * Path of a JWKS file (`{"keys": [...]}`) of asymmetric token keys (EC P-256/ES256, Ed25519/EdDSA or
   * RSA ≥ 2048/RS256), each with a `kid`. When set, tokens are signed with `JWT_ACTIVE_KID` and every
   * key in the file verifies; HS256 is refused. Default none (HS256 with `JWT_SECRET`).
   */
  JWT_KEYS_FILE: z.string().min(1).optional(),
  /** `kid` of the key in `JWT_KEYS_FILE` that signs new tokens (it needs its private part). Default: the only key. */
  JWT_ACTIVE_KID: z.string().min(1).optional(),
  /** Server key (≥ 32 bytes) sealing agents' LLM API keys and webhook secrets at rest (AES-256-GCM). Required in production; generated per data dir otherwise. */
  MAIHIVE_SECRET_KEY: z.string().min(32).optional(),
  /** Comma-separated former server keys (key rotation): still open old sealed keys, which start-up re-seals under `MAIHIVE_SECRET_KEY`. Default none. */
  MAIHIVE_SECRET_KEY_PREVIOUS: commaList.pipe(z.array(z.string().min(32))).optional(),
  /** `username:password` of a platform admin created at start when missing. Default none. */
  MAIHIVE_BOOTSTRAP_ADMIN: z
    .string()
    .regex(/^[^:]+:.+$/, 'expected username:password')
    .optional(),
  /** `true` lets requests without credentials act as tenant `default`. Default `false`. */
  LEGACY_ANONYMOUS: bool.default(false),
  /** pino level. Default `info`. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Largest accepted JSON body, bytes. Default 1 MiB. */
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** Bearer token that may read `/metrics` besides platform admins. Default none. */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Directory for local state (private PostgreSQL/Redis data, dev secrets). Default `.maihive`. */
  MAIHIVE_DATA_DIR: z.string().default('.maihive'),
  MAIHIVE_PLUGIN_DIR: z.string().optional(),
  /** Start private PostgreSQL/Redis when the configured ones are unset or unreachable. Default: on outside production. */
  MAIHIVE_AUTOSTART: bool.optional(),
  /** Maximum PostgreSQL connections per process pool. Default 20. */
  DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
  /**
   * Most of a process's PostgreSQL connections one tenant holds at once (its other units of work
   * wait for its own). Default: a quarter of `DB_POOL_MAX`, rounded up (5 of 20).
   */
  DB_POOL_MAX_PER_TENANT: z.coerce.number().int().min(1).max(500).optional(),
  /** Milliseconds to wait for a pooled PostgreSQL connection before failing with 503. Default 5000. */
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  /** Prefix of every Redis key and BullMQ queue. Default `mh`. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .default('mh'),
  /** Access-token lifetime, seconds. Default 3600. */
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).default(3600),
  /** Refresh-token lifetime, seconds. Default 30 days. */
  REFRESH_TOKEN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(30 * 24 * 3600),
  /** Heartflow jobs a worker process runs at once. Default 20. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(20),
  /**
   * LLM calls (HTTP requests to remote providers) one tenant may have in flight at once, across all
   * worker processes together (a Redis semaphore); more wait, up to the call's timeout. Default 4.
   */
  LLM_MAX_CONCURRENCY_PER_TENANT: z.coerce.number().int().min(1).max(1000).default(4),
  /**
   * Requests in progress in one API process at which it counts as overloaded and sheds the
   * tenants holding more than their fair share (429). Default 1024.
   */
  INGRESS_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(1024),
  /**
   * Event-loop delay (p99 of each half second) at which an API process counts as overloaded once
   * two half seconds in a row reach it, ms. Default 200.
   */
  INGRESS_MAX_LOOP_DELAY_MS: z.coerce.number().int().min(1).default(200),
  /**
   * A 429 for rate or load is held a random time up to this before it is sent, so that refused
   * clients retrying after `Retry-After` spread out instead of coming back together, ms. 0 = at
   * once. Default 1000.
   */
  INGRESS_REFUSAL_JITTER_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
  /** Per-statement timeout inside tenant units of work, ms. Default 15000. */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().positive().default(15000),
  /**
   * Operator listeners of maim_message plain WebSockets whose clients send no token (the standalone
   * MaiBot-Napcat-Adapter): comma-separated `<host name>=<tenant>/<agent>` (a socket whose Host
   * header names the host is that agent's) or `:<port>=<tenant>/<agent>` (a socket on that port of
   * HOST is). Default none.
   */
  MAIM_LISTENERS: z
    .string()
    .transform((v, ctx) => {
      const listeners: MaimListener[] = [];
      for (const entry of v.split(',').map((e) => e.trim())) {
        const listener = entry === '' ? undefined : parseListener(entry);
        if (!listener) {
          ctx.addIssue({ code: 'custom', message: `bad listener ${JSON.stringify(entry)}` });
          return z.NEVER;
        }
        listeners.push(listener);
      }
      return listeners;
    })
    .optional(),
  /** Failed logins per account (tenant + username) per window before 429. Default 10. */
  LOGIN_MAX_FAILURES_PER_USER: z.coerce.number().int().min(1).default(10),
  /** Failed logins per client IP per window, whatever accounts they name, before 429. Default 50. */
  LOGIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).default(50),
  /** Window of the failed-login limits, seconds from the first failure in it. Default 900 (15 min). */
  LOGIN_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  /**
   * Per-model LLM prices, per 1000 tokens: a JSON object `{"<model>": {"prompt": n, "completion": n}}`
   * (`*` prices every model not named). An agent's own `llm.cost_per_1k_tokens` wins over it.
   * Default `{}`: cost 0.
   */
  LLM_PRICES: z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(
      z.record(
        z.string().min(1),
        z.strictObject({ prompt: z.number().min(0), completion: z.number().min(0) }),
      ),
    )
    .optional(),
  /** Tenants that get their own series in `/metrics` (comma-separated ids); others are never a label. Default none. */
  METRICS_TENANT_ALLOWLIST: commaList
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/)).max(100))
    .optional(),
  /** Minute usage buckets are purged this many hours after they end. Default 48. */
  STATS_MINUTE_RETENTION_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 366)
    .default(48),
  /** Hour usage buckets are purged this many days after they end (day buckets are kept). Default 35. */
  STATS_HOUR_RETENTION_DAYS: z.coerce.number().int().min(2).max(3660).default(35),
  /** Expired memories are purged by a worker this often, ms; 0 turns the periodic purge off. Default 1 h. */
  MEMORY_PURGE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(7 * 86_400_000)
    .default(3_600_000),
});

export type Env = z.infer<typeof EnvSchema>;

/** Price per 1000 tokens, prompt and completion, in the installation's billing currency. */
export interface TokenPrice {
  readonly prompt: number;
  readonly completion: number;
}

/** `LLM_PRICES`: model name → price; the key `*` prices every model not named (see `llm/prices.ts`). */
export type LlmPriceTable = Readonly<Record<string, TokenPrice>>;

/** A variable's rule in words and a value that passes it: every configuration error quotes both. */
interface VariableRule {
  rule: string;
  example: string;
}

/**
 * The rules of every variable, for people: a start-up that stops names the variable, its rule and
 * an example in one line, and the README's table states the same rules (a unit test holds both to
 * this table).
 */
export const VARIABLE_RULES: { readonly [K in keyof Env]-?: VariableRule } = {
  NODE_ENV: { rule: 'one of development, test, production', example: 'production' },
  DATABASE_URL: {
    rule: 'a URL postgres://user[:password]@host:port/database',
    example: 'postgres://maihive_app@127.0.0.1:5432/maihive',
  },
  DATABASE_ADMIN_URL: {
    rule: 'a URL postgres://user[:password]@host:port/database',
    example: 'postgres://postgres@127.0.0.1:5432/maihive',
  },
  MAIHIVE_APP_ROLE: {
    rule: 'a role name: a lower-case letter or _, then up to 62 lower-case letters, digits or _',
    example: 'maihive_app',
  },
  REDIS_URL: {
    rule: 'a URL redis://[:password@]host:port[/db] (rediss:// for TLS), or a cluster redis-cluster://[:password@]host:port,host:port,…',
    example: 'redis://127.0.0.1:6379',
  },
  HOST: { rule: 'a host name or IP address to listen on', example: '0.0.0.0' },
  PORT: { rule: 'an integer from 0 to 65535 (0: any free port)', example: '8080' },
  JWT_SECRET: { rule: 'at least 32 characters', example: '$(openssl rand -hex 32)' },
  JWT_KEYS_FILE: {
    rule: 'the path of a readable JWKS file whose keys each have a kid',
    example: '/etc/maihive/jwks.json',
  },
  JWT_ACTIVE_KID: {
    rule: 'the kid of a key with its private part in JWT_KEYS_FILE (set JWT_KEYS_FILE too)',
    example: '2026-12',
  },
  MAIHIVE_SECRET_KEY: { rule: 'at least 32 characters', example: '$(openssl rand -hex 32)' },
  MAIHIVE_SECRET_KEY_PREVIOUS: {
    rule: 'comma-separated former keys, each at least 32 characters',
    example: '<former key>,<older key>',
  },
  MAIHIVE_BOOTSTRAP_ADMIN: {
    rule: 'username:password, the username an identifier ([A-Za-z0-9][A-Za-z0-9_.:-]*), the password not empty',
    example: 'admin:change-me-now',
  },
  LEGACY_ANONYMOUS: { rule: 'true or false (also 1/0, yes/no)', example: 'false' },
  LOG_LEVEL: { rule: 'one of fatal, error, warn, info, debug, trace, silent', example: 'info' },
  MAX_BODY_BYTES: { rule: 'a positive integer (bytes)', example: '1048576' },
  METRICS_TOKEN: { rule: 'at least 16 characters', example: '$(openssl rand -hex 16)' },
  MAIHIVE_DATA_DIR: { rule: 'a directory path', example: '/var/lib/maihive' },
  MAIHIVE_PLUGIN_DIR: { rule: 'a directory path', example: '/etc/maihive/plugins' },
  MAIHIVE_AUTOSTART: { rule: 'true or false (also 1/0, yes/no)', example: 'false' },
  DB_POOL_MAX: { rule: 'an integer from 1 to 500', example: '20' },
  DB_POOL_MAX_PER_TENANT: { rule: 'an integer from 1 to 500', example: '5' },
  DB_CONNECT_TIMEOUT_MS: { rule: 'a positive integer (ms)', example: '5000' },
  REDIS_PREFIX: { rule: '1 to 64 characters from A-Z a-z 0-9 _ . -', example: 'mh' },
  ACCESS_TOKEN_TTL_SECONDS: { rule: 'an integer of at least 30 (seconds)', example: '3600' },
  REFRESH_TOKEN_TTL_SECONDS: { rule: 'an integer of at least 60 (seconds)', example: '2592000' },
  WORKER_CONCURRENCY: { rule: 'an integer from 1 to 1000', example: '20' },
  LLM_MAX_CONCURRENCY_PER_TENANT: { rule: 'an integer from 1 to 1000', example: '4' },
  INGRESS_MAX_IN_FLIGHT: { rule: 'a positive integer', example: '1024' },
  INGRESS_MAX_LOOP_DELAY_MS: { rule: 'a positive integer (ms)', example: '200' },
  INGRESS_REFUSAL_JITTER_MS: { rule: 'an integer from 0 to 10000 (ms)', example: '1000' },
  DB_STATEMENT_TIMEOUT_MS: { rule: 'a positive integer (ms)', example: '15000' },
  MAIM_LISTENERS: {
    rule: 'comma-separated <host name>=<tenant>/<agent> or :<port>=<tenant>/<agent>',
    example: 'maim-acme.example.com=acme/bot1,:18095=acme/bot2',
  },
  LOGIN_MAX_FAILURES_PER_USER: { rule: 'a positive integer', example: '10' },
  LOGIN_MAX_FAILURES_PER_IP: { rule: 'a positive integer', example: '50' },
  LOGIN_FAILURE_WINDOW_SECONDS: { rule: 'a positive integer (seconds)', example: '900' },
  LLM_PRICES: {
    rule: 'a JSON object of model name (or *) → {"prompt": n, "completion": n}, prices per 1000 tokens, n ≥ 0',
    example: '{"gpt-4o-mini":{"prompt":0.15,"completion":0.6}}',
  },
  METRICS_TENANT_ALLOWLIST: {
    rule: 'comma-separated tenant ids, at most 100',
    example: 'acme,globex',
  },
  STATS_MINUTE_RETENTION_HOURS: { rule: 'an integer from 1 to 8784 (hours)', example: '48' },
  STATS_HOUR_RETENTION_DAYS: { rule: 'an integer from 2 to 3660 (days)', example: '35' },
  MEMORY_PURGE_INTERVAL_MS: { rule: 'an integer from 0 (off) to 604800000 (ms)', example: '3600000' },
};

/** One line naming the variable, what is wrong, its rule and an example value. */
export function configIssue(variable: keyof Env, problem: string): { variable: string; issue: string } {
  const { rule, example } = VARIABLE_RULES[variable];
  return { variable, issue: `${variable} ${problem}: must be ${rule} (e.g. ${variable}=${example})` };
}

export interface Config {
  readonly env: Env['NODE_ENV'];
  readonly databaseUrl: string | undefined;
  readonly databaseAdminUrl: string | undefined;
  readonly appRole: string;
  readonly redisUrl: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly jwtSecret: string | undefined;
  /** Asymmetric token keys from `JWT_KEYS_FILE`; when set they replace HS256. */
  readonly jwtKeys: JwtKeySet | undefined;
  readonly secretKey: string | undefined;
  readonly previousSecretKeys: readonly string[];
  readonly bootstrapAdmin: { username: string; password: string } | undefined;
  readonly legacyAnonymous: boolean;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly maxBodyBytes: number;
  readonly metricsToken: string | undefined;
  readonly dataDir: string;
  /** Operator-installed plugins, one module per subdirectory (`MAIHIVE_PLUGIN_DIR`); none when unset. */
  readonly pluginDir: string | undefined;
  readonly autostart: boolean;
  readonly redisPrefix: string;
  readonly workerConcurrency: number;
  /** LLM calls of one tenant in flight across all worker processes. */
  readonly llmMaxConcurrencyPerTenant: number;
  readonly ingress: {
    readonly maxInFlight: number;
    readonly maxLoopDelayMs: number;
    readonly refusalJitterMs: number;
  };
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  /** Operator listeners of tokenless maim_message adapters (`MAIM_LISTENERS`). */
  readonly maimListeners: readonly MaimListener[];
  readonly login: {
    readonly maxFailuresPerUser: number;
    readonly maxFailuresPerIp: number;
    readonly failureWindowSeconds: number;
  };
  /** Per-model LLM prices per 1000 tokens (`LLM_PRICES`); read through `priceFor`. */
  readonly llmPrices: LlmPriceTable;
  /** Tenants with their own `/metrics` series. */
  readonly metricsTenantAllowlist: readonly string[];
  readonly statsRetention: { readonly minuteHours: number; readonly hourDays: number };
  /** How often a worker purges expired memories, ms; 0 = never. */
  readonly memoryPurgeIntervalMs: number;
  readonly db: {
    readonly poolMax: number;
    /** Most connections of the pool one tenant holds at once. */
    readonly poolMaxPerTenant: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
  };
}

/** A configuration that cannot start; `message` is one line naming every bad variable, its rule and an example. */
export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; issue: string }[]) {
    super(`invalid configuration: ${issues.map((i) => i.issue).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Variables whose values are never echoed in errors (secrets, URLs that may hold a password). */
const SECRET_VARIABLES = new Set<string>([
  'JWT_SECRET',
  'MAIHIVE_SECRET_KEY',
  'MAIHIVE_SECRET_KEY_PREVIOUS',
  'METRICS_TOKEN',
  'MAIHIVE_BOOTSTRAP_ADMIN',
  'DATABASE_URL',
  'DATABASE_ADMIN_URL',
  'REDIS_URL',
]);

/** "is invalid" with what was given: the value itself, or only its length for a secret. */
/**
 * A tenant's share of a pool by default: a quarter, rounded up. A flood of one tenant then runs at
 * most that many transactions at once in PostgreSQL (the rest wait in its own line, see
 * `FairSemaphore`), and the other tenants' statements do not queue behind all of the pool's.
 */
export function defaultPoolMaxPerTenant(poolMax: number): number {
  return Math.max(1, Math.ceil(poolMax / 4));
}

function invalidValue(variable: string, value: string | undefined): string {
  if (value === undefined) return 'is invalid';
  if (SECRET_VARIABLES.has(variable)) return `is invalid (${value.length} characters given)`;
  return `is invalid (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`;
}

/** Parses the environment once; throws `ConfigError` naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset" for optional values, as in most shells' `VAR=` idiom.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const variables = [...new Set(parsed.error.issues.map((i) => String(i.path[0]) as keyof Env))];
    const issues = variables.map((v) => configIssue(v, invalidValue(v, cleaned[v])));
    throw new ConfigError(issues);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production' && !e.JWT_SECRET && !e.JWT_KEYS_FILE) {
    throw new ConfigError([
      configIssue('JWT_SECRET', 'is required when NODE_ENV=production and JWT_KEYS_FILE is unset'),
    ]);
  }
  if (e.JWT_ACTIVE_KID !== undefined && e.JWT_KEYS_FILE === undefined) {
    throw new ConfigError([configIssue('JWT_ACTIVE_KID', 'is set without JWT_KEYS_FILE')]);
  }
  let jwtKeys: JwtKeySet | undefined;
  if (e.JWT_KEYS_FILE !== undefined) {
    try {
      jwtKeys = readJwtKeySet(e.JWT_KEYS_FILE, e.JWT_ACTIVE_KID);
    } catch (err) {
      if (!(err instanceof JwtKeyError)) throw err;
      throw new ConfigError([configIssue('JWT_KEYS_FILE', `cannot be used (${err.message})`)]);
    }
  }
  const [adminUser, ...rest] = e.MAIHIVE_BOOTSTRAP_ADMIN?.split(':') ?? [];
  return Object.freeze({
    env: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    databaseAdminUrl: e.DATABASE_ADMIN_URL,
    appRole: e.MAIHIVE_APP_ROLE,
    redisUrl: e.REDIS_URL,
    host: e.HOST,
    port: e.PORT,
    jwtSecret: e.JWT_SECRET,
    jwtKeys,
    secretKey: e.MAIHIVE_SECRET_KEY,
    previousSecretKeys: Object.freeze(e.MAIHIVE_SECRET_KEY_PREVIOUS ?? []),
    bootstrapAdmin: adminUser ? { username: adminUser, password: rest.join(':') } : undefined,
    legacyAnonymous: e.LEGACY_ANONYMOUS,
    logLevel: e.LOG_LEVEL,
    maxBodyBytes: e.MAX_BODY_BYTES,
    metricsToken: e.METRICS_TOKEN,
    dataDir: e.MAIHIVE_DATA_DIR,
    pluginDir: e.MAIHIVE_PLUGIN_DIR || undefined,
    autostart: e.MAIHIVE_AUTOSTART ?? e.NODE_ENV !== 'production',
    redisPrefix: e.REDIS_PREFIX,
    workerConcurrency: e.WORKER_CONCURRENCY,
    llmMaxConcurrencyPerTenant: e.LLM_MAX_CONCURRENCY_PER_TENANT,
    ingress: Object.freeze({
      maxInFlight: e.INGRESS_MAX_IN_FLIGHT,
      maxLoopDelayMs: e.INGRESS_MAX_LOOP_DELAY_MS,
      refusalJitterMs: e.INGRESS_REFUSAL_JITTER_MS,
    }),
    accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
    maimListeners: Object.freeze(e.MAIM_LISTENERS ?? []),
    login: Object.freeze({
      maxFailuresPerUser: e.LOGIN_MAX_FAILURES_PER_USER,
      maxFailuresPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      failureWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
    }),
    llmPrices: Object.freeze(e.LLM_PRICES ?? {}),
    metricsTenantAllowlist: Object.freeze(e.METRICS_TENANT_ALLOWLIST ?? []),
    statsRetention: Object.freeze({
      minuteHours: e.STATS_MINUTE_RETENTION_HOURS,
      hourDays: e.STATS_HOUR_RETENTION_DAYS,
    }),
    memoryPurgeIntervalMs: e.MEMORY_PURGE_INTERVAL_MS,
    db: Object.freeze({
      poolMax: e.DB_POOL_MAX,
      poolMaxPerTenant: Math.min(
        e.DB_POOL_MAX,
        e.DB_POOL_MAX_PER_TENANT ?? defaultPoolMaxPerTenant(e.DB_POOL_MAX),
      ),
      connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
    }),
  });
}
