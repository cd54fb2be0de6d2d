// pm2 process file: `pm2 start ecosystem.config.js`. Each role is also runnable alone with npm.
// Migrations run at the start of each process under an advisory lock, so instances never race.
// TypeScript is loaded with tsx's loader (`node --import tsx`): there is no build output to deploy.
const common = {
  interpreter: 'node',
  node_args: '--import tsx',
  kill_timeout: 15000,
  env: { NODE_ENV: 'production' },
};

module.exports = {
  apps: [
    {
      ...common,
      name: 'maihive-api',
      script: 'src/main.ts',
      args: '--role api',
      exec_mode: 'cluster',
      instances: process.env.MAIHIVE_API_INSTANCES || 'max',
    },
    {
      ...common,
      name: 'maihive-worker',
      script: 'src/main.ts',
      args: '--role worker',
      exec_mode: 'fork',
      // Each worker runs WORKER_CONCURRENCY jobs; the fair dispatcher shares them between tenants.
      instances: process.env.MAIHIVE_WORKER_INSTANCES || 2,
    },
  ],
};
