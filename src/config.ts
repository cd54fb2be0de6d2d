import { z } from 'zod';

import { JwtKeyError, type JwtKeySet, readJwtKeySet } from './jwtKeys';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * Every environment variable MaiHive reads, parsed once at boot. No other module reads `process.env`.
 * Names and defaults follow `API.md` § Operations interface.
 */
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
  /** Redis URL (or a Redis Cluster seed node). Default: launcher. */
  REDIS_URL: z.string().url().optional(),
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
  MAIHIVE_SECRET_KEY_PREVIOUS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== ''),
    )
    .pipe(z.array(z.string().min(32)))
    .optional(),
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
  /** Start private PostgreSQL/Redis when the configured ones are unset or unreachable. Default: on outside production. */
  MAIHIVE_AUTOSTART: bool.optional(),
  /** Maximum PostgreSQL connections per process pool. Default 20. */
  DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
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
  /** Event-loop delay (p99 over the last half second) at which an API process counts as overloaded, ms. Default 200. */
  INGRESS_MAX_LOOP_DELAY_MS: z.coerce.number().int().min(1).default(200),
  /**
   * A 429 for rate or load is held a random time up to this before it is sent, so that refused
   * clients retrying after `Retry-After` spread out instead of coming back together, ms. 0 = at
   * once. Default 1000.
   */
  INGRESS_REFUSAL_JITTER_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
  /** Per-statement timeout inside tenant units of work, ms. Default 15000. */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().positive().default(15000),
  /** Failed logins per account (tenant + username) per window before 429. Default 10. */
  LOGIN_MAX_FAILURES_PER_USER: z.coerce.number().int().min(1).default(10),
  /** Failed logins per client IP per window, whatever accounts they name, before 429. Default 50. */
  LOGIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).default(50),
  /** Window of the failed-login limits, seconds from the first failure in it. Default 900 (15 min). */
  LOGIN_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
});

export type Env = z.infer<typeof EnvSchema>;

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
  readonly login: {
    readonly maxFailuresPerUser: number;
    readonly maxFailuresPerIp: number;
    readonly failureWindowSeconds: number;
  };
  readonly db: {
    readonly poolMax: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
  };
}

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: { variable: string; issue: string }[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws `ConfigError` naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset" for optional values, as in most shells' `VAR=` idiom.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ variable: i.path.join('.'), issue: i.message }));
    throw new ConfigError(`invalid environment: ${issues.map((i) => i.variable).join(', ')}`, issues);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production' && !e.JWT_SECRET && !e.JWT_KEYS_FILE) {
    throw new ConfigError('JWT_SECRET is required in production', [
      { variable: 'JWT_SECRET', issue: 'required when NODE_ENV=production (or JWT_KEYS_FILE)' },
    ]);
  }
  if (e.JWT_ACTIVE_KID !== undefined && e.JWT_KEYS_FILE === undefined) {
    throw new ConfigError('JWT_ACTIVE_KID needs JWT_KEYS_FILE', [
      { variable: 'JWT_ACTIVE_KID', issue: 'only meaningful with JWT_KEYS_FILE' },
    ]);
  }
  let jwtKeys: JwtKeySet | undefined;
  if (e.JWT_KEYS_FILE !== undefined) {
    try {
      jwtKeys = readJwtKeySet(e.JWT_KEYS_FILE, e.JWT_ACTIVE_KID);
    } catch (err) {
      if (!(err instanceof JwtKeyError)) throw err;
      throw new ConfigError(`invalid JWT_KEYS_FILE: ${err.message}`, [
        { variable: 'JWT_KEYS_FILE', issue: err.message },
      ]);
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
    login: Object.freeze({
      maxFailuresPerUser: e.LOGIN_MAX_FAILURES_PER_USER,
      maxFailuresPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      failureWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
    }),
    db: Object.freeze({
      poolMax: e.DB_POOL_MAX,
      connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
    }),
  });
}
