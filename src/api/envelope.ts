import type { NextFunction, Request, Response } from 'express';

import { MaiHiveError, RateLimitError, ServiceUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { mapRedisError } from '../redis/availability';

/** `res.locals` as the middlewares of this app fill it. */
export interface RequestLocals {
  requestId: string;
  /** A 429's reason, for the access log: the refusing limit (`credential`, `in_flight`, …) or code. */
  refusal?: string;
}

function requestIdOf(res: Response): string {
  return (res.locals as Partial<RequestLocals>).requestId ?? 'req_unknown';
}

/**
 * Writes a JSON answer as Express's `res.status(status).json(body)` would with this app's settings
 * (no ETag, no JSON spaces or replacer): `Content-Type: application/json; charset=utf-8` unless a
 * type was set, `Content-Length`, no body for HEAD, 204 or 304. Without `res.json`/`res.send`'s
 * generic path (content-type parsing and charset rewriting, freshness check, a Buffer copy), which
 * every answer of the API pays.
 */
export function writeJson(res: Response, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.status(status);
  if (status === 204 || status === 304) {
    res.removeHeader('Content-Type');
    res.removeHeader('Content-Length');
    res.end();
    return;
  }
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  if (res.req.method === 'HEAD') res.end();
  else res.end(json, 'utf8');
}

/**
 * Sends the success envelope of API.md. `topLevel` adds fields beside the envelope's own, for
 * protocols that read them there (OneBot's quick operation); it never replaces an envelope field.
 */
export function sendOk(
  res: Response,
  data: unknown,
  status = 200,
  message = 'ok',
  topLevel: Record<string, unknown> = {},
): void {
  writeJson(res, status, {
    ...topLevel,
    success: true,
    data,
    message,
    timestamp: new Date().toISOString(),
    request_id: requestIdOf(res),
  });
}

export function sendError(
  res: Response,
  status: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): void {
  writeJson(res, status, {
    success: false,
    error: details === undefined ? { code, message } : { code, message, details },
    timestamp: new Date().toISOString(),
    request_id: requestIdOf(res),
  });
}

/**
 * How long a refusal for rate or load (429 `RATE_LIMIT_EXCEEDED`) is held before it is sent: a
 * random share of `jitterMs`. Clients that all retry `Retry-After` seconds after their refusal
 * (a pool of senders hitting a rate limit together) then come back spread over that time instead
 * of together, and the process meets a steady trickle rather than a burst every second, in which
 * every other tenant's request would queue. Quota refusals (retry in hours) are sent at once.
 */
export function refusalDelayMs(err: unknown, jitterMs: number, random: () => number): number {
  if (!(err instanceof RateLimitError) || err.code !== 'RATE_LIMIT_EXCEEDED' || jitterMs <= 0) return 0;
  return Math.floor(random() * jitterMs);
}

export interface ErrorHandlerOptions {
  /** See `refusalDelayMs`; 0 sends refusals at once. */
  refusalJitterMs?: number;
  random?: () => number;
}

/** The one place where errors become responses. Unknown errors are logged and never leak details. */
export function errorHandler(logger: Logger, options: ErrorHandlerOptions = {}) {
  const jitterMs = options.refusalJitterMs ?? 0;
  const random = options.random ?? Math.random;
  return (thrown: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(thrown);
    // Any layer may meet a Redis outage (authentication, caches, queues): it is a 503, not a 500.
    const err = mapRedisError(thrown);
    if (err instanceof RateLimitError || err instanceof ServiceUnavailableError) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
    }
    if (err instanceof RateLimitError) {
      const limit = err.details?.limit;
      (res.locals as RequestLocals).refusal = typeof limit === 'string' ? limit : err.code.toLowerCase();
    }
    if (err instanceof MaiHiveError) {
      if (err.status >= 500) logger.error({ err, request_id: requestIdOf(res) }, 'request failed');
      const delay = refusalDelayMs(err, jitterMs, random);
      if (delay === 0) return sendError(res, err.status, err.code, err.message, err.details);
      const timer = setTimeout(() => {
        if (!res.writableEnded && !res.destroyed)
          sendError(res, err.status, err.code, err.message, err.details);
      }, delay);
      res.once('close', () => clearTimeout(timer));
      return;
    }
    logger.error({ err, request_id: requestIdOf(res) }, 'unhandled error');
    sendError(res, 500, 'INTERNAL_ERROR', 'internal error');
  };
}
