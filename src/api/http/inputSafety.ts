import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';

import type { NextFunction, Request, Response } from 'express';

import { ValidationError } from '../../errors';

/**
 * Deepest nesting accepted in a JSON request body or frame. MaiHive's own schemas nest a few
 * levels; free-form fields (`metadata`, `settings`, adapter segments) a few more. Anything deeper is
 * refused up front: recursive code further on (validation, serialisation, SQL parameters) would
 * otherwise overflow the stack on a hostile body and answer 500.
 */
export const MAX_JSON_DEPTH = 32;

export interface InputProblem {
  path: string;
  issue: string;
}

/** A UTF-16 surrogate without its partner (`\ud800` in JSON): no UTF-8 text can hold it. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why a string cannot be stored as it was sent, if it cannot. */
function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character (U+0000)';
  // PostgreSQL would store U+FFFD in its place: accepted, then returned changed.
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate (not valid Unicode text)';
  return undefined;
}

/**
 * The first thing in a parsed JSON value that MaiHive cannot take: nesting deeper than `maxDepth`,
 * or a string (value or key) holding U+0000, which PostgreSQL's text and jsonb cannot store — a
 * message accepted with it would fail later, in a worker, and be lost — or a lone surrogate, which
 * would be stored as U+FFFD. Iterative, so the check itself cannot overflow the stack.
 */
/** A value still to check, and how it was reached (its path is only spelled out for an answer). */
interface Pending {
  value: unknown;
  depth: number;
  parent: Pending | undefined;
  key: string | number | undefined;
}

function pathOf(item: Pending): string {
  const keys: (string | number)[] = [];
  for (let p: Pending | undefined = item; p?.key !== undefined; p = p.parent) keys.push(p.key);
  return keys.length === 0 ? 'body' : keys.reverse().join('.');
}

export function jsonInputProblem(value: unknown, maxDepth = MAX_JSON_DEPTH): InputProblem | undefined {
  // Every request body passes here: each pending value links to its parent instead of carrying a
  // copy of its path, so a body that is fine allocates no path at all.
  const stack: Pending[] = [{ value, depth: 0, parent: undefined, key: undefined }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item.value === 'string') {
      const issue = textProblem(item.value);
      if (issue) return { path: pathOf(item), issue };
      continue;
    }
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth >= maxDepth) return { path: pathOf(item), issue: `nested deeper than ${maxDepth} levels` };
    const depth = item.depth + 1;
    if (Array.isArray(item.value)) {
      item.value.forEach((v, i) => stack.push({ value: v, depth, parent: item, key: i }));
      continue;
    }
    for (const key in item.value) {
      if (!Object.hasOwn(item.value, key)) continue;
      const issue = textProblem(key);
      if (issue) return { path: pathOf(item), issue: `a field name ${issue}` };
      stack.push({ value: (item.value as Record<string, unknown>)[key], depth, parent: item, key });
    }
  }
  return undefined;
}

/**
 * The request's parsed query string, parsed once: Express 5's `req.query` is a getter that parses
 * the query string again on every read (an object per read), and the input check and the route
 * each read it.
 */
export function queryOf(req: Request, res: Response): Record<string, unknown> {
  const locals = res.locals as { parsedQuery?: Record<string, unknown> };
  return (locals.parsedQuery ??= req.query as Record<string, unknown>);
}

/**
 * After the JSON parser: a body or query string with a problem above is answered 400
 * VALIDATION_ERROR naming the field, before any route sees it.
 */
export function rejectUnsafeInput(req: Request, res: Response, next: NextFunction): void {
  const inQuery = jsonInputProblem(queryOf(req, res), 2);
  if (inQuery)
    return next(
      new ValidationError('invalid request query', [{ ...inQuery, path: `query.${inQuery.path}` }]),
    );
  const inBody = req.body === undefined ? undefined : jsonInputProblem(req.body);
  if (inBody) return next(new ValidationError('invalid request body', [inBody]));
  next();
}

/**
 * `verify` step of the JSON parser: a body that is not valid UTF-8 is refused (400) instead of
 * being decoded with U+FFFD in place of the bad bytes, stored, and returned changed.
 */
export function assertUtf8Body(_req: IncomingMessage, _res: unknown, buf: Buffer): void {
  if (!isUtf8(buf)) {
    throw Object.assign(new Error('request body is not valid UTF-8'), {
      status: 400,
      type: 'encoding.invalid_utf8',
    });
  }
}
