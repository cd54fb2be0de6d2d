import type { IncomingMessage } from 'node:http';

/**
 * The raw bytes of a JSON body, kept beside the parsed one for the routes that verify a signature
 * over the body as sent (NapCat's `X-Signature`). Only the adapters' bodies are kept, and only as
 * long as their request lives.
 */
const rawBodies = new WeakMap<IncomingMessage, Buffer>();

/** `verify` hook of `express.json`. */
export function keepRawBody(req: IncomingMessage, _res: unknown, buf: Buffer): void {
  if (req.url?.startsWith('/adapters/') || req.url?.startsWith('/api/v1/adapters/')) rawBodies.set(req, buf);
}

export function rawBodyOf(req: IncomingMessage): Buffer | undefined {
  return rawBodies.get(req);
}
