import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

/**
 * The `http` permission's GET: the internet, never the server's own network. The host is resolved
 * once; every address it resolves to must be public (loopback, private, link-local — which holds
 * the cloud metadata services —, carrier-grade NAT, multicast, reserved, IPv6 unique-local and
 * IPv4 embedded in IPv6 are refused), and the request connects to that resolved address (the Host
 * header and TLS server name stay the host's), so a second, different DNS answer cannot slip in
 * (no DNS-rebinding window). Redirects are followed by hand, each hop checked the same way.
 */

/** A host's addresses, as `dns.lookup(host, { all: true })` gives them. */
export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

export interface SafeFetchOptions {
  /** Default `dns.lookup` (the system resolver, `/etc/hosts` included). */
  resolve?: Resolver;
  /** Whether an address may be connected to. Default `isPublicAddress` (tests may widen it). */
  isAllowed?: (address: string) => boolean;
  /** The whole exchange, redirects included, ms. Default 3000. */
  timeoutMs?: number;
  /** Most body bytes read (the rest is dropped). Default 64 KiB. */
  maxBytes?: number;
  /** Default 3. */
  maxRedirects?: number;
}

export const PRIVATE_TARGET = 'private and loopback hosts are not reachable';

export class PrivateTargetError extends Error {
  constructor() {
    super(PRIVATE_TARGET);
    this.name = 'PrivateTargetError';
  }
}

const V4_BLOCKED: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (and Alibaba's metadata 100.100.100.200)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local: 169.254.169.254 metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const V6_BLOCKED: [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 32], // Teredo (an IPv4 hidden in it)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (fd00:ec2::254 metadata)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [net, prefix] of V4_BLOCKED) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of V6_BLOCKED) blocked.addSubnet(net, prefix, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (a trailing dotted quad included). */
function groupsOf(ip: string): number[] | undefined {
  let text = ip.toLowerCase().split('%')[0]!;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = quad[1]!.split('.').map(Number);
    text = `${text.slice(0, -quad[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups =
    tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined;
}

const v4Of = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/** The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(g: number[]): string | undefined {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0)) return v4Of(g[6]!, g[7]!); // ::ffff:a.b.c.d, ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4Of(g[6]!, g[7]!); // NAT64
  if (g[0] === 0x2002) return v4Of(g[1]!, g[2]!); // 6to4
  return undefined;
}

/** Whether an IP address is one a plugin may reach: public unicast, IPv4 or IPv6. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !blocked.check(address, 'ipv4');
  if (family !== 6) return false;
  const groups = groupsOf(address);
  if (!groups) return false;
  const v4 = embeddedV4(groups);
  if (v4 !== undefined) return isPublicAddress(v4);
  return !blocked.check(address.split('%')[0]!, 'ipv6');
}

const systemResolver: Resolver = async (host) => lookup(host, { all: true, verbatim: true });

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** One GET to `url` over a connection to `address`, the body read up to `maxBytes`. */
function getPinned(
  url: URL,
  address: string,
  maxBytes: number,
  signal: AbortSignal,
): Promise<{ status: number; location: string | undefined; body: string }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      {
        protocol: url.protocol,
        host: address,
        port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { host: url.host, 'user-agent': 'MaiHive-plugin', accept: '*/*' },
        // The certificate is checked against the host, not the address connected to.
        ...(secure && isIP(host) === 0 ? { servername: host } : {}),
        agent: false,
        signal,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (REDIRECTS.has(status) && location) {
          res.destroy();
          resolve({ status, location, body: '' });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size >= maxBytes) return;
          chunks.push(chunk.subarray(0, maxBytes - size));
          size += Math.min(chunk.length, maxBytes - size);
          if (size >= maxBytes) {
            res.destroy();
            resolve({ status, location: undefined, body: Buffer.concat(chunks).toString('utf8') });
          }
        });
        res.on('end', () =>
          resolve({ status, location: undefined, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** GET a public http(s) URL (see above); `{status, body}` of the last hop. */
export async function safeFetch(
  url: string,
  options: SafeFetchOptions = {},
): Promise<{ status: number; body: string }> {
  const resolve = options.resolve ?? systemResolver;
  const allowed = options.isAllowed ?? isPublicAddress;
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;
  const signal = AbortSignal.timeout(options.timeoutMs ?? 3000);
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:')
      throw new Error(`only http(s) URLs are fetched, not ${current.protocol}`);
    const host = current.hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await resolve(host);
    if (addresses.length === 0) throw new Error(`${host} does not resolve`);
    // Every address must be public: a name that also points inside is refused, whichever is first.
    if (addresses.some((a) => !allowed(a.address))) throw new PrivateTargetError();
    const answer = await getPinned(current, addresses[0]!.address, maxBytes, signal);
    if (answer.location === undefined) return { status: answer.status, body: answer.body };
    if (hop >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects`);
    current = new URL(answer.location, current);
  }
}
