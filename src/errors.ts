/**
 * The few named errors of MaiHive. Each carries a stable `code` (the API error code), an HTTP
 * status and optional details; one Express middleware maps them to the error envelope and one
 * table (in the workers) decides which are retried.
 */
export interface FieldIssue {
  path: string;
  issue: string;
}

/**
 * Node's socket error codes meaning the server (PostgreSQL or Redis) is down, restarting, or
 * refusing connections: a 503 with `Retry-After`, not a bug.
 */
export const CONNECTION_FAILURE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export abstract class MaiHiveError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details;
  }
}

export class ValidationError extends MaiHiveError {
  readonly code = 'VALIDATION_ERROR';
  readonly status = 400;
  constructor(message: string, fields: FieldIssue[] = [], extra: Record<string, unknown> = {}) {
    super(message, { details: { fields, ...extra } });
  }
  get fields(): FieldIssue[] {
    return (this.details?.fields as FieldIssue[] | undefined) ?? [];
  }
}

export class UnauthorizedError extends MaiHiveError {
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
  constructor(message = 'invalid or missing credentials', options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

export class ForbiddenError extends MaiHiveError {
  readonly code = 'FORBIDDEN';
  readonly status = 403;
}

/** A request, query or statement tried to reach outside its isolation context. */
export class IsolationViolationError extends MaiHiveError {
  readonly code = 'ISOLATION_VIOLATION';
  readonly status = 403;
}

export type NotFoundCode = 'TENANT_NOT_FOUND' | 'AGENT_NOT_FOUND' | 'CHAT_STREAM_NOT_FOUND' | 'NOT_FOUND';

export class NotFoundError extends MaiHiveError {
  readonly status = 404;
  constructor(
    readonly code: NotFoundCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(message, details === undefined ? {} : { details });
  }
}

export class ConflictError extends MaiHiveError {
  readonly code = 'CONFLICT';
  readonly status = 409;
}

export class PayloadTooLargeError extends MaiHiveError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly status = 413;
}

export class UnsupportedMediaTypeError extends MaiHiveError {
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  readonly status = 415;
}

export class RateLimitError extends MaiHiveError {
  readonly status = 429;
  constructor(
    readonly code: 'RATE_LIMIT_EXCEEDED' | 'QUOTA_EXCEEDED',
    message: string,
    readonly retryAfterSeconds: number,
    details?: Record<string, unknown>,
  ) {
    super(message, details === undefined ? {} : { details });
  }
}

/** A dependency (PostgreSQL, Redis) is unreachable or the process is shutting down. */
export class ServiceUnavailableError extends MaiHiveError {
  readonly code = 'SERVICE_UNAVAILABLE';
  readonly status = 503;
  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** A job that must not be retried (bad payload, tenant gone). */
export class UnrecoverableJobError extends MaiHiveError {
  readonly code = 'UNRECOVERABLE_JOB';
  readonly status = 500;
}
