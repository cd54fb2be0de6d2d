/** Names of the variables through which globalSetup hands the test servers to each test file. */
export const TEST_ENV = {
  serverUrl: 'MAIHIVE_TEST_PG_SERVER_URL',
  template: 'MAIHIVE_TEST_PG_TEMPLATE',
  redisUrl: 'MAIHIVE_TEST_REDIS_URL',
  appRole: 'MAIHIVE_TEST_APP_ROLE',
} as const;

export function testEnv(name: keyof typeof TEST_ENV): string {
  const value = process.env[TEST_ENV[name]];
  if (!value) throw new Error(`${TEST_ENV[name]} is unset: run the tests through jest (globalSetup)`);
  return value;
}
