import { readFileSync } from 'node:fs';
import path from 'node:path';

import { ConfigError, type Env, loadConfig, VARIABLE_RULES } from '../../src/config';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      env: 'development',
      appRole: 'maihive_app',
      host: '127.0.0.1',
      port: 8080,
      legacyAnonymous: false,
      logLevel: 'info',
      maxBodyBytes: 1024 * 1024,
      autostart: true,
    });
    expect(c.databaseUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses booleans, numbers and the bootstrap admin (password may contain colons)', () => {
    const c = loadConfig({ LEGACY_ANONYMOUS: 'true', PORT: '0', MAIHIVE_BOOTSTRAP_ADMIN: 'root:pa:ss' });
    expect(c.legacyAnonymous).toBe(true);
    expect(c.port).toBe(0);
    expect(c.bootstrapAdmin).toEqual({ username: 'root', password: 'pa:ss' });
  });

  it('names every invalid variable at once', () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'not a url', JWT_SECRET: 'short' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.variable).sort()).toEqual([
      'DATABASE_URL',
      'JWT_SECRET',
      'PORT',
    ]);
  });

  it('requires JWT_SECRET and turns the launcher off in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET/);
    const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) });
    expect(c.autostart).toBe(false);
  });

  it('defaults the failed-login limits to 10 per user and 50 per IP in 15 minutes, and parses overrides', () => {
    expect(loadConfig({}).login).toEqual({
      maxFailuresPerUser: 10,
      maxFailuresPerIp: 50,
      failureWindowSeconds: 900,
    });
    expect(
      loadConfig({
        LOGIN_MAX_FAILURES_PER_USER: '3',
        LOGIN_MAX_FAILURES_PER_IP: '7',
        LOGIN_FAILURE_WINDOW_SECONDS: '60',
      }).login,
    ).toEqual({ maxFailuresPerUser: 3, maxFailuresPerIp: 7, failureWindowSeconds: 60 });
    expect(() => loadConfig({ LOGIN_MAX_FAILURES_PER_USER: '0' })).toThrow(ConfigError);
  });

  it('parses MAIM_LISTENERS into host and port listeners, and refuses a bad port or host', () => {
    const config = loadConfig({ MAIM_LISTENERS: 'Maim-Acme.example.com=acme/bot1, :18095=acme/bot:2' });
    expect(config.maimListeners).toEqual([
      { host: 'maim-acme.example.com', tenantId: 'acme', agentId: 'bot1' },
      { port: 18095, tenantId: 'acme', agentId: 'bot:2' },
    ]);
    expect(loadConfig({}).maimListeners).toEqual([]);
    for (const bad of [':70000=acme/bot1', ':0=acme/bot1', 'bad_host=acme/bot1', 'a.example=acme/bot1,,']) {
      expect(() => loadConfig({ MAIM_LISTENERS: bad })).toThrow(/MAIM_LISTENERS is invalid/);
    }
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(8080);
  });

  /** A value each variable refuses (HOST, MAIHIVE_DATA_DIR and MAIHIVE_PLUGIN_DIR take any string). */
  const INVALID: Partial<Record<keyof Env, string>> = {
    NODE_ENV: 'prod',
    DATABASE_URL: 'not a url',
    DATABASE_ADMIN_URL: 'nope',
    MAIHIVE_APP_ROLE: 'Bad-Role',
    REDIS_URL: 'redis host',
    PORT: '70000',
    JWT_SECRET: 'short',
    JWT_KEYS_FILE: '/nonexistent/maihive-jwks.json',
    JWT_ACTIVE_KID: 'k1',
    MAIHIVE_SECRET_KEY: 'short',
    MAIHIVE_SECRET_KEY_PREVIOUS: 'short',
    MAIHIVE_BOOTSTRAP_ADMIN: 'nocolon',
    LEGACY_ANONYMOUS: 'maybe',
    LOG_LEVEL: 'loud',
    MAX_BODY_BYTES: '-1',
    METRICS_TOKEN: 'short',
    MAIHIVE_AUTOSTART: 'perhaps',
    DB_POOL_MAX: '0',
    DB_POOL_MAX_PER_TENANT: '0',
    DB_CONNECT_TIMEOUT_MS: 'soon',
    REDIS_PREFIX: 'has space',
    ACCESS_TOKEN_TTL_SECONDS: '5',
    REFRESH_TOKEN_TTL_SECONDS: '10',
    WORKER_CONCURRENCY: '0',
    LLM_MAX_CONCURRENCY_PER_TENANT: '2000',
    INGRESS_MAX_IN_FLIGHT: '0',
    INGRESS_MAX_LOOP_DELAY_MS: 'x',
    INGRESS_REFUSAL_JITTER_MS: '20000',
    DB_STATEMENT_TIMEOUT_MS: '-5',
    LOGIN_MAX_FAILURES_PER_USER: '0',
    LOGIN_MAX_FAILURES_PER_IP: '0',
    LOGIN_FAILURE_WINDOW_SECONDS: '0',
    MAIM_LISTENERS: 'maim.example.com=acme',
    LLM_PRICES: '{"gpt": {"prompt": -1, "completion": 1}}',
    METRICS_TENANT_ALLOWLIST: 'acme,bad tenant',
    STATS_MINUTE_RETENTION_HOURS: '0',
    STATS_HOUR_RETENTION_DAYS: '1',
    MEMORY_PURGE_INTERVAL_MS: '-1',
  };
  const ANY_STRING = ['HOST', 'MAIHIVE_DATA_DIR', 'MAIHIVE_PLUGIN_DIR'];

  it('has a rule and an example for every variable, and a refused value for every variable that can be wrong', () => {
    const variables = Object.keys(VARIABLE_RULES);
    expect(variables.length).toBeGreaterThan(30);
    expect([...Object.keys(INVALID), ...ANY_STRING].sort()).toEqual([...variables].sort());
  });

  it.each(Object.entries(INVALID))(
    'stops on a bad %s with one line naming it, its rule and an example',
    (variable, value) => {
      let caught: unknown;
      try {
        loadConfig({ [variable]: value });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      const { message, issues } = caught as ConfigError;
      const { rule, example } = VARIABLE_RULES[variable as keyof Env];
      expect(issues.map((i) => i.variable)).toEqual([variable]);
      expect(message).not.toContain('\n');
      expect(message).toContain(`${variable} `);
      expect(message).toContain(`must be ${rule}`);
      expect(message).toContain(`(e.g. ${variable}=${example})`);
    },
  );

  it('never echoes a secret value in the error', () => {
    const secret = 'hunter2-is-not-long-enough';
    expect(() => loadConfig({ JWT_SECRET: secret })).toThrow(/26 characters given/);
    expect(() => loadConfig({ JWT_SECRET: secret })).not.toThrow(new RegExp(secret));
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/got "eighty"/);
  });

  it('takes every literal example value it gives', () => {
    const literal = Object.entries(VARIABLE_RULES).filter(
      ([v, r]) => !/^[$<]/.test(r.example) && v !== 'JWT_KEYS_FILE' && v !== 'JWT_ACTIVE_KID',
    );
    expect(literal.length).toBeGreaterThan(25);
    for (const [variable, { example }] of literal) {
      expect({
        variable,
        ok: (() => loadConfig({ JWT_SECRET: 'x'.repeat(32), [variable]: example }))() !== undefined,
      }).toEqual({
        variable,
        ok: true,
      });
    }
  });

  it('states every variable and its rule in the README', () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    for (const [variable, { rule }] of Object.entries(VARIABLE_RULES)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${variable}\` |`));
      expect({ variable, row: row !== undefined }).toEqual({ variable, row: true });
      expect(row).toContain(rule.replace(/\|/g, '\\|'));
    }
  });

  it("caps a tenant's share of the PostgreSQL pool at a quarter by default, never above the pool", () => {
    expect(loadConfig({}).db).toMatchObject({ poolMax: 20, poolMaxPerTenant: 5 });
    expect(loadConfig({ DB_POOL_MAX: '2' }).db).toMatchObject({ poolMax: 2, poolMaxPerTenant: 1 });
    expect(loadConfig({ DB_POOL_MAX: '8', DB_POOL_MAX_PER_TENANT: '50' }).db.poolMaxPerTenant).toBe(8);
    expect(loadConfig({ DB_POOL_MAX_PER_TENANT: '12' }).db.poolMaxPerTenant).toBe(12);
  });
});
