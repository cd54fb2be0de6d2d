import {
  ConflictError,
  CONNECTION_FAILURE_CODES,
  IsolationViolationError,
  MaiHiveError,
  ServiceUnavailableError,
} from '../errors';

const UNAVAILABLE_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08006',
]);

interface PgLikeError {
  code?: string;
  message?: string;
  constraint?: string;
}

/**
 * Turns a node-postgres error into one of the named errors where one applies: unreachable → 503,
 * an RLS `WITH CHECK` failure → isolation violation, a unique violation → conflict. Anything else
 * is returned as it is (and becomes a 500 without SQL in the body).
 */
export function mapDatabaseError(err: unknown): unknown {
  if (err instanceof MaiHiveError || typeof err !== 'object' || err === null) return err;
  const e = err as PgLikeError;
  const message = e.message ?? '';
  if (
    (e.code && (CONNECTION_FAILURE_CODES.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code))) ||
    // pg's own client-side failures: no connection in time, connection lost, no answer in time.
    /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Query read timeout|is not queryable/i.test(
      message,
    )
  ) {
    return new ServiceUnavailableError('database unavailable', 5, { cause: err });
  }
  if (e.code === '42501' && /row-level security/i.test(message)) {
    return new IsolationViolationError('row is outside the isolation context', { cause: err });
  }
  if (e.code === '23505') {
    return new ConflictError('already exists', { cause: err, details: { constraint: e.constraint } });
  }
  return err;
}
