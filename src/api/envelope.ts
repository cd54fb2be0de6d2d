import type { NextFunction, Request, Response } from 'express';

import { MaiHiveError, RateLimitError, ServiceUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { mapRedisError } from '../queues/redisAvailability';

/** `res.locals` as the middlewares of this app fill it. */
export interface RequestLocals {
  requestId: string;
}

function requestIdOf(res: Response): string {
  return (res.locals as Partial<RequestLocals>).requestId ?? 'req_unknown';
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
  res.status(status).json({
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
  res.status(status).json({
    success: false,
    error: details === undefined ? { code, message } : { code, message, details },
    timestamp: new Date().toISOString(),
    request_id: requestIdOf(res),
  });
}

/** The one place where errors become responses. Unknown errors are logged and never leak details. */
export function errorHandler(logger: Logger) {
  return (thrown: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(thrown);
    // Any layer may meet a Redis outage (authentication, caches, queues): it is a 503, not a 500.
    const err = mapRedisError(thrown);
    if (err instanceof RateLimitError || err instanceof ServiceUnavailableError) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
    }
    if (err instanceof MaiHiveError) {
      if (err.status >= 500) logger.error({ err, request_id: requestIdOf(res) }, 'request failed');
      return sendError(res, err.status, err.code, err.message, err.details);
    }
    logger.error({ err, request_id: requestIdOf(res) }, 'unhandled error');
    sendError(res, 500, 'INTERNAL_ERROR', 'internal error');
  };
}
