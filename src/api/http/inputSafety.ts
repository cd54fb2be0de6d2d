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
export function jsonInputProblem(value: unknown, maxDepth = MAX_JSON_DEPTH): InputProblem | undefined {
  const stack: { value: unknown; depth: number; path: readonly (string | number)[] }[] = [
    { value, depth: 0, path: [] },
  ];
  const at = (path: readonly (string | number)[]) => (path.length === 0 ? 'body' : path.join('.'));
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item.value === 'string') {
      const issue = textProblem(item.value);
      if (issue) return { path: at(item.path), issue };
      continue;
    }
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth >= maxDepth)
      return { path: at(item.path), issue: `nested deeper than ${maxDepth} levels` };
    if (Array.isArray(item.value)) {
      item.value.forEach((v, i) => stack.push({ value: v, depth: item.depth + 1, path: [...item.path, i] }));
      continue;
    }
    for (const [key, v] of Object.entries(item.value)) {
      const issue = textProblem(key);
      if (issue) return { path: at(item.path), issue: `a field name ${issue}` };
      stack.push({ value: v, depth: item.depth + 1, path: [...item.path, key] });
    }
  }
  return undefined;
}

/**
 * After the JSON parser: a body or query string with a problem above is answered 400
 * VALIDATION_ERROR naming the field, before any route sees it.
 */
export function rejectUnsafeInput(req: Request, _res: Response, next: NextFunction): void {
  const inQuery = jsonInputProblem(req.query, 2);
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
