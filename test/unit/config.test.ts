import { ConfigError, loadConfig } from '../../src/config';

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

  it('treats empty values as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(8080);
  });
});
