/** @type {import('jest').Config} */
module.exports = {
  // Jest's node environment, failing a test file that leaves sockets, servers or timers open.
  testEnvironment: '<rootDir>/test/support/handleCheckEnvironment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest'] },
  // postgrator and jose ship only as ES modules; Node 20 loads it natively, Jest's module system needs it compiled.
  transformIgnorePatterns: ['/node_modules/(?!(postgrator|jose)/)'],
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 30000,
  // Each file owns its database and Redis prefix, so files run in parallel safely.
  maxWorkers: 2,
};
