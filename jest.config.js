/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest'] },
  // postgrator ships only as an ES module; Node 20 loads it natively, Jest's module system needs it compiled.
  transformIgnorePatterns: ['/node_modules/(?!postgrator/)'],
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 30000,
  // Each file owns its database and Redis prefix, so files run in parallel safely.
  maxWorkers: 2,
};
