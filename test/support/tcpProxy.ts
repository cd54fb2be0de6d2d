import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a shared server (PostgreSQL), so that a test can take the
 * server away from the app under test without stopping it for everyone else:
 * - `cut()`: stop accepting and destroy every connection (the server is gone: resets, refusals);
 * - `stall()`: keep accepting, forward nothing either way (the server hangs: no answer at all);
 * - `restore()`: forward again, on the same port.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private stalled = false;
  port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target.host, target.port);
    await proxy.listen(0);
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Open client connections (each with its upstream). */
  get connections(): number {
    return this.pairs.size;
  }

  async cut(): Promise<void> {
    const closed = this.closeServer();
    this.destroyAll();
    await closed;
  }

  stall(): void {
    this.stalled = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  async restore(): Promise<void> {
    if (this.stalled) {
      // Connections held during the stall are dropped: what they had in flight is lost anyway.
      this.stalled = false;
      this.destroyAll();
    }
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    const closed = this.closeServer();
    this.destroyAll();
    await closed;
  }

  private async listen(port: number): Promise<void> {
    const server = createServer((client) => this.accept(client));
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  private accept(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (this.stalled) {
      client.pause();
      upstream.pause();
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private destroyAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  private closeServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
