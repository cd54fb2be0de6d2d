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
      // V8 sizes its heap-growing factor from the old-space limit: with the default limit (a share
      // of the machine's RAM) an API process idling at ~35 MB of live heap grew to ~240 MB RSS over
      // 100k sends, with 512 MB it stays near 145 MB (bench:ingress, which runs with these flags).
      // 8 MB semi-spaces instead of 16 keep the young generation small for a little more GC time.
      // Headroom: 100 concurrent ~1 MiB batch requests peaked at ~135 MB of heap, 250 at ~410 MB;
      // beyond that a process runs out of heap and pm2 restarts it (cap large bodies upstream).
      node_args: `${common.node_args} --max-old-space-size=512 --max-semi-space-size=8`,
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
