import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createApp } from '../../src/api/app';
import { SocketServer } from '../../src/api/sockets/socketServer';
import { compose } from '../../src/composition';
import { testEnv } from './env';
import type { TestApp } from './testApp';

export interface SecondProcess {
  /** Its composition: its own caches, pools and Redis connections. */
  composition: Awaited<ReturnType<typeof compose>>;
  /** Base URL of its own HTTP server, when one was asked for. */
  url: string | undefined;
  /** Its chat-socket server, with its HTTP server. */
  sockets: SocketServer | undefined;
  close(): Promise<void>;
}

/**
 * Another "API process" beside a test app: a second composition on the same database and Redis
 * prefix (its own in-process caches), with its own HTTP server when `http` is set. What one
 * process changes, the other must see.
 */
export async function startSecondProcess(
  app: TestApp,
  options: { http?: boolean } = {},
): Promise<SecondProcess> {
  const composition = await compose({
    config: app.deps.config,
    logger: app.t.logger,
    databaseUrl: app.t.appUrl,
    redisUrl: testEnv('redisUrl'),
  });
  let server: Server | undefined;
  let sockets: SocketServer | undefined;
  if (options.http) {
    server = createApp(composition.deps).listen(0, '127.0.0.1');
    await once(server, 'listening');
    sockets = new SocketServer(composition.deps);
    await sockets.attach(server);
  }
  return {
    composition,
    url: server && `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    async close() {
      await sockets?.close();
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
      await composition.close();
    },
  };
}
