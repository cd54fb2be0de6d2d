import {
  extendZodWithOpenApi,
  type OpenAPIRegistry,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

// Schemas here call `.openapi()` while the module loads; extending is idempotent.
extendZodWithOpenApi(z);

/**
 * How one route appears in `/api/v1/openapi.json`: its operation id, the request headers it reads,
 * the error answers it can give (each with the one error envelope), and its success answer. The
 * error statuses follow from what the route is (validated input → 400; credentials → 401, 403 and
 * 429; a path parameter → 404) plus what it declares (`errors`), so a new route is documented
 * correctly without listing them by hand.
 */

/** Request headers routes read, with what they mean (API.md § Conventions). */
export const REQUEST_HEADERS = {
  'Idempotency-Key':
    'Makes the send idempotent for 24 h: a repeat answers with the first message (`duplicate: true`).',
  'X-Tenant-ID':
    'The tenant the request acts in. Required for platform admins; anyone else may only name their own tenant (else 403 ISOLATION_VIOLATION).',
  'X-Agent-ID':
    "The agent the request acts for (default: the credential's agent, else `default`); an agent-bound credential may only name its own agent.",
} as const;

export type RequestHeader = keyof typeof REQUEST_HEADERS;

/** Error statuses a route may declare beyond those that follow from its kind. */
export type ErrorStatus = 401 | 403 | 404 | 409 | 413 | 415 | 429;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'VALIDATION_ERROR: the input is invalid (`details.fields` lists every failing field)',
  401: 'UNAUTHORIZED: missing, invalid, expired or revoked credentials',
  403: 'FORBIDDEN, ISOLATION_VIOLATION or a tenant/agent limit: the credential may not do this here',
  404: 'The resource does not exist in the caller’s tenant (or at all)',
  409: 'CONFLICT: the resource already exists or is in a conflicting state',
  413: 'PAYLOAD_TOO_LARGE: the body is over the size limit',
  415: 'UNSUPPORTED_MEDIA_TYPE: the body is not JSON',
  429: 'RATE_LIMIT_EXCEEDED or QUOTA_EXCEEDED: wait `Retry-After` seconds',
  503: 'SERVICE_UNAVAILABLE: a dependency (PostgreSQL, Redis) is down or slow; wait `Retry-After` seconds',
};

/** Statuses whose answer carries `Retry-After`. */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

export const errorEnvelope = z
  .object({
    success: z.literal(false),
    error: z.object({
      code: z.string().describe('A stable error code (API.md § Errors)'),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
    timestamp: z.string(),
    request_id: z.string(),
  })
  .openapi('Error');

/** The success envelope around a route's `data`. */
export const successEnvelope = (data: z.ZodType) =>
  z.object({
    success: z.literal(true),
    data,
    message: z.string(),
    timestamp: z.string(),
    request_id: z.string(),
  });

export function errorResponse(status: number): ResponseConfig {
  return {
    description: ERROR_DESCRIPTIONS[status] ?? 'error envelope',
    ...(RETRY_AFTER_STATUSES.has(status)
      ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } } }
      : {}),
    content: { 'application/json': { schema: errorEnvelope } },
  };
}

export interface OperationDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Express-style path relative to `/api/v1`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  isPublic: boolean;
  params?: z.ZodType | undefined;
  query?: z.ZodType | undefined;
  body?: z.ZodType | undefined;
  headers?: readonly RequestHeader[] | undefined;
  errors?: readonly ErrorStatus[] | undefined;
  /** Schema of `data` in the success envelope. */
  response?: z.ZodType | undefined;
  status?: number | undefined;
  /** The success answer's media type when it is not the JSON envelope. */
  produces?: 'text/event-stream' | 'image/*' | undefined;
}

/** `/api/v1/...` with `{name}` path parameters, as OpenAPI writes them. */
export function openApiPath(path: string): string {
  return `/api/v1${path.replace(/:([A-Za-z_]+)/g, '{$1}')}`;
}

function errorStatuses(doc: OperationDoc): number[] {
  const statuses = new Set<number>(doc.errors ?? []);
  // Every route validates its query string (unknown parameters are refused), so any may answer 400.
  statuses.add(400);
  if (doc.body) {
    statuses.add(413);
    statuses.add(415);
  }
  if (doc.params) statuses.add(404);
  if (!doc.isPublic) {
    statuses.add(401);
    statuses.add(403);
    statuses.add(429);
  }
  statuses.add(503);
  return [...statuses].sort((a, b) => a - b);
}

export function documentOperation(registry: OpenAPIRegistry, doc: OperationDoc): void {
  const request: RouteConfig['request'] = {};
  if (doc.params instanceof z.ZodObject) request.params = doc.params;
  if (doc.query instanceof z.ZodObject) request.query = doc.query;
  if (doc.headers?.length) {
    request.headers = doc.headers.map((name) =>
      z
        .string()
        .optional()
        .openapi({ param: { name, in: 'header', description: REQUEST_HEADERS[name] } }),
    );
  }
  if (doc.body) {
    request.body = { required: true, content: { 'application/json': { schema: doc.body } } };
  }
  const success: ResponseConfig =
    doc.produces === 'text/event-stream'
      ? {
          description: 'Server-sent events (not enveloped)',
          content: { 'text/event-stream': { schema: z.string() } },
        }
      : doc.produces === 'image/*'
        ? {
            description: 'The image bytes (not enveloped)',
            content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } },
          }
        : {
            description: 'success envelope',
            content: { 'application/json': { schema: successEnvelope(doc.response ?? z.unknown()) } },
          };
  const responses: RouteConfig['responses'] = { [doc.status ?? 200]: success };
  for (const status of errorStatuses(doc)) responses[status] = errorResponse(status);
  responses.default = {
    description: 'INTERNAL_ERROR',
    content: { 'application/json': { schema: errorEnvelope } },
  };
  registry.registerPath({
    method: doc.method,
    path: openApiPath(doc.path),
    operationId: doc.operationId,
    summary: doc.summary,
    tags: [doc.tag],
    security: doc.isPublic ? [] : [{ bearer: [] }, { apiKey: [] }],
    request,
    responses,
  });
}
