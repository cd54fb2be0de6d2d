import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { type Role, type Runtime, startRuntime } from './runtime';
import { DependencyUnreachableError } from './services/localServices';

/** Entry point of `npm start` (every role in one process), `npm run start:api` and `npm run start:worker`. */
async function main(): Promise<void> {
  const roleArg = process.argv.indexOf('--role');
  const role = (roleArg >= 0 ? process.argv[roleArg + 1] : 'all') as Role;
  if (!['api', 'worker', 'all'].includes(role)) {
    createLogger().fatal({ role }, 'unknown --role: use api, worker or all');
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    const logger = createLogger();
    if (err instanceof ConfigError) logger.fatal({ issues: err.issues }, err.message);
    else logger.fatal({ err }, 'cannot read configuration');
    process.exit(1);
  }
  const logger = createLogger({ level: config.logLevel });
  // Signals are taken from the start: one that arrives while starting (workers may already be
  // running jobs) shuts down cleanly as soon as the start-up is complete.
  let runtime: Runtime | undefined;
  let signalled: string | undefined;
  const shutdown = (rt: Runtime) => {
    rt.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const stop = (signal: string) => {
    if (signalled) return;
    signalled = signal;
    logger.info({ signal }, 'shutting down');
    if (runtime) shutdown(runtime);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    runtime = await startRuntime(config, logger, role);
  } catch (err) {
    if (err instanceof DependencyUnreachableError) logger.fatal({ variable: err.variable }, err.message);
    else if (err instanceof ConfigError) logger.fatal({ issues: err.issues }, err.message);
    else logger.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  if (signalled) {
    shutdown(runtime);
    return;
  }
  // pm2 (`wait_ready` in ecosystem.config.js) waits for this before it stops the old instance of a
  // reload: the new one is listening and its workers are running.
  process.send?.('ready');
}

void main();
