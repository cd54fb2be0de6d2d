import type { NextFunction, Request, Response } from 'express';

import { newId } from '../domain/ids';

const VALID_INCOMING = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Echoes a well-formed incoming `X-Request-Id`, else makes one; every response carries it. */
export function assignRequestId(req: Request, res: Response): void {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && VALID_INCOMING.test(incoming) ? incoming : newId('req');
  res.locals.requestId = id;
  res.setHeader('X-Request-Id', id);
}

/** `assignRequestId` as a middleware. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  assignRequestId(req, res);
  next();
}
