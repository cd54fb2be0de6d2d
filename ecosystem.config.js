// pm2 process file: `npm run build && npx pm2 start ecosystem.config.js`. It runs the compiled
// output in dist/ (`npm run build`), so a production install needs no TypeScript tooling
// (`npm ci --omit=dev`); `npm start` keeps running the sources through tsx for development.
// Migrations run at the start of each process under an advisory lock, so instances never race.
const common = {
  interpreter: 'node',
  // Stack traces point into src/*.ts through the maps tsc writes beside dist/*.js.
  node_args: '--enable-source-maps',
  // `pm2 reload` starts the new instance, waits for its 'ready' message (sent once it listens and
  // its workers run; src/main.ts), then sends SIGINT to the old one, which stops accepting, finishes
  // its requests and jobs and exits; only after kill_timeout is it killed.
  wait_ready: true,
  listen_timeout: 60000,
  kill_timeout: 15000,
  env: { NODE_ENV: 'production' },
};

module.exports = {
  apps: [
    {
      ...common,
      name: 'maihive-api',
      script: 'dist/main.js',
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
      script: 'dist/main.js',
      args: '--role worker',
      exec_mode: 'fork',
      // Each worker runs WORKER_CONCURRENCY jobs; the fair dispatcher shares them between tenants.
      instances: process.env.MAIHIVE_WORKER_INSTANCES || 2,
    },
  ],
};
