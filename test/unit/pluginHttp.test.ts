import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { isPublicAddress, PRIVATE_TARGET, type Resolver, safeFetch } from '../../src/plugins/safeFetch';

/**
 * The plugin `http` permission's fetch: private targets are refused after DNS resolution and on
 * redirects, and the connection goes to the address that was checked. A resolver is injected;
 * the one local server stands for "the internet" by widening `isAllowed` to 127.0.0.1 only.
 */

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.100.100.200',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '198.18.0.1',
    '::',
    '::1',
    'fc00::1',
    'fd00:ec2::254',
    'fe80::1',
    'fe80::1%eth0',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '::127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:7f00:1::1',
    '2001:db8::1',
    'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
  ])('allows %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe('safeFetch', () => {
  let server: Server;
  let port: number;
  const seen: { url: string | undefined; host: string | undefined }[] = [];
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url, host: req.headers.host });
      const handler = routes.get(req.url ?? '');
      if (handler) handler(req, res);
      else res.writeHead(404).end('no');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
    routes.set('/hello', (_req, res) => res.writeHead(200).end('hello'));
    routes.set('/big', (_req, res) => res.writeHead(200).end('x'.repeat(100 * 1024)));
    routes.set('/hang', () => undefined);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  /** The test's "internet": the local server's address, and nothing else private. */
  const onlyLocalServer = (address: string) => address === '127.0.0.1' || isPublicAddress(address);

  function resolver(answers: Record<string, string[][]>): Resolver & { calls: string[] } {
    const calls: string[] = [];
    const fn = (host: string) => {
      calls.push(host);
      const queue = answers[host] ?? [[]];
      const next = queue.length > 1 ? queue.shift()! : queue[0]!;
      return Promise.resolve(next.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
    };
    return Object.assign(fn, { calls });
  }

  it('refuses a name resolving to a private, loopback or metadata address, before connecting', async () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::1', 'fd12::1', '::ffff:10.0.0.1']) {
      const resolve = resolver({ 'innocent.example': [[address]] });
      await expect(safeFetch(`http://innocent.example:${port}/hello`, { resolve })).rejects.toThrow(
        PRIVATE_TARGET,
      );
    }
    // Any private address among the answers is enough, whichever comes first.
    const mixed = resolver({ 'mixed.example': [['93.184.216.34', '10.0.0.7']] });
    await expect(safeFetch('http://mixed.example/', { resolve: mixed })).rejects.toThrow(PRIVATE_TARGET);
    // Literal addresses and names the URL parser turns into them, without asking DNS.
    const none = resolver({});
    for (const url of [
      `http://127.0.0.1:${port}/hello`,
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://169.254.169.254/latest/meta-data/',
    ]) {
      await expect(safeFetch(url, { resolve: none })).rejects.toThrow(PRIVATE_TARGET);
    }
    expect(none.calls).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('resolves once and connects to the address it checked (no DNS rebinding)', async () => {
    // A rebinding name: the first answer passes the check, any later one points inside.
    const resolve = resolver({ 'rebind.example': [['127.0.0.1'], ['10.0.0.1']] });
    const res = await safeFetch(`http://rebind.example:${port}/hello`, {
      resolve,
      isAllowed: onlyLocalServer,
    });
    expect(res).toEqual({ status: 200, body: 'hello' });
    expect(resolve.calls).toEqual(['rebind.example']);
    // The request reached the checked address under the name asked for.
    expect(seen).toEqual([{ url: '/hello', host: `rebind.example:${port}` }]);
  });

  it('checks every redirect hop and refuses one to a private target', async () => {
    routes.set('/to-metadata', (_req, res) =>
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end(),
    );
    routes.set('/to-internal', (_req, res) => res.writeHead(301, { location: '/hello' }).end());
    routes.set('/to-name', (_req, res) =>
      res.writeHead(307, { location: 'http://intranet.example/admin' }).end(),
    );
    const resolve = resolver({ 'public.example': [['127.0.0.1']], 'intranet.example': [['192.168.0.10']] });
    const opts = { resolve, isAllowed: onlyLocalServer };
    await expect(safeFetch(`http://public.example:${port}/to-metadata`, opts)).rejects.toThrow(
      PRIVATE_TARGET,
    );
    await expect(safeFetch(`http://public.example:${port}/to-name`, opts)).rejects.toThrow(PRIVATE_TARGET);
    expect(resolve.calls).toContain('intranet.example');
    // A redirect to an allowed place is followed.
    expect(await safeFetch(`http://public.example:${port}/to-internal`, opts)).toEqual({
      status: 200,
      body: 'hello',
    });
    routes.set('/loop', (_req, res) => res.writeHead(302, { location: '/loop' }).end());
    await expect(safeFetch(`http://public.example:${port}/loop`, opts)).rejects.toThrow(/redirects/);
    routes.set('/to-file', (_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await expect(safeFetch(`http://public.example:${port}/to-file`, opts)).rejects.toThrow(/only http/);
  });

  it('reads at most maxBytes and gives up after its time', async () => {
    const resolve = resolver({ 'public.example': [['127.0.0.1']] });
    const big = await safeFetch(`http://public.example:${port}/big`, {
      resolve,
      isAllowed: onlyLocalServer,
      maxBytes: 64 * 1024,
    });
    expect(big.body.length).toBe(64 * 1024);
    await expect(
      safeFetch(`http://public.example:${port}/hang`, {
        resolve,
        isAllowed: onlyLocalServer,
        timeoutMs: 200,
      }),
    ).rejects.toThrow();
  });
});
