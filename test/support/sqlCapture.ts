/**
 * Records every SQL statement sent through node-postgres in this process, with the role that sent
 * it and the application function that issued it.
 *
 * Wrapping `pg.Client.prototype.query` rather than turning on PostgreSQL's statement log: the log
 * needs a superuser setting and a server log file to read, and it cannot say which repository
 * function sent a statement, while a frame of the JavaScript stack can (repositories call
 * `db.query` synchronously, so their frame is on the stack when pg is called). Pools create
 * `pg.Client`s, so the application's pool and everything else in the process are covered.
 */
import { readFileSync } from 'node:fs';

import pg from 'pg';

export interface CapturedStatement {
  text: string;
  /** The database role of the connection (the application role, or the owner for migrations). */
  user: string;
  /** `src/…/file.ts:function` of the first application frame, or `(outside src)`. */
  caller: string;
}

const SRC_FRAME = /\((\/[^()\s]*?\/(src\/[^:()\s]+\.ts)):(\d+):\d+\)$/;
const DECLARATIONS = [
  /^\s*(?:export\s+)?(?:async\s+)?function\s*\*?\s*(\w+)/,
  /^\s*(?:export\s+)?const\s+(\w+)\s*=\s*(?:async\s*)?(?:\(|function)/,
  // A class member: two spaces in, as the house style formats them.
  /^ {2}(?:(?:private|public|protected|static|async|readonly)\s+)*(\w+)\s*(?:<[^>]*>)?\(/,
];
const sources = new Map<string, string[]>();

/**
 * The function declared around a line: the nearest declaration at or above it. Read from the source
 * because compiled async functions lose their names in stack frames.
 */
function enclosingFunction(file: string, line: number): string {
  let lines = sources.get(file);
  if (!lines) sources.set(file, (lines = readFileSync(file, 'utf8').split('\n')));
  for (let i = line - 1; i >= 0; i--) {
    const text = lines[i] ?? '';
    const name = DECLARATIONS.map((d) => d.exec(text)?.[1]).find((n) => n !== undefined);
    if (name && !['if', 'for', 'while', 'switch', 'catch', 'return', 'await'].includes(name)) return name;
  }
  return '<module>';
}

/** `file:function` of the first stack frame in src/ outside the database access layer itself. */
function callerOf(stack: string): string {
  for (const line of stack.split('\n').slice(1)) {
    const m = SRC_FRAME.exec(line.trim());
    if (!m || m[2] === 'src/db/database.ts') continue;
    return `${m[2]}:${enclosingFunction(m[1]!, Number(m[3]))}`;
  }
  return '(outside src)';
}

function textOf(config: unknown): string | undefined {
  if (typeof config === 'string') return config;
  if (
    typeof config === 'object' &&
    config !== null &&
    typeof (config as { text?: unknown }).text === 'string'
  ) {
    return (config as { text: string }).text;
  }
  return undefined;
}

export interface SqlCapture {
  readonly statements: CapturedStatement[];
  stop(): void;
}

export function captureSql(): SqlCapture {
  const statements: CapturedStatement[] = [];
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function capturedQuery(this: pg.Client, ...args: unknown[]) {
    const text = textOf(args[0]);
    if (text !== undefined) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 40;
      const stack = new Error().stack ?? '';
      Error.stackTraceLimit = limit;
      statements.push({ text, user: String(this.user), caller: callerOf(stack) });
    }
    return original.apply(this, args);
  };
  return {
    statements,
    stop() {
      proto.query = original;
    },
  };
}
