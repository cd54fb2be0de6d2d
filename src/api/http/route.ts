import { extendZodWithOpenApi, type OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { NextFunction, Request, Response, Router } from 'express';
import { z } from 'zod';

import type { Principal } from '../../auth/principal';
import type { Role } from '../../domain/roles';
import { ForbiddenError, IsolationViolationError, UnauthorizedError, ValidationError } from '../../errors';
import { sendOk } from '../envelope';
import { queryOf } from './inputSafety';
import { documentOperation, type ErrorStatus, type RequestHeader } from './openapiOperation';

// Route modules call `.openapi()` on their schemas while being imported, before `app.ts` runs its
// own body; extending here (idempotent) makes that order irrelevant.
extendZodWithOpenApi(z);

/** Who may call a route: anyone (`public`), or the roles listed. */
export type RouteAuth = 'public' | readonly Role[];

/** The caller a handler sees: always there on a route that needs credentials. */
export type PrincipalOf<A extends RouteAuth> = A extends 'public' ? Principal | undefined : Principal;

/** What a handler gets: validated input, the caller, and the raw request/response for headers. */
export interface HandlerInput<P, Q, B, A extends RouteAuth = RouteAuth> {
  params: P;
  query: Q;
  body: B;
  /** The authenticated caller; on a public route, whoever presented valid credentials (or nobody). */
  principal: PrincipalOf<A>;
  req: Request;
  res: Response;
}

/** A handler's result: the `data` of the success envelope, or a full reply (status, message). */
export type HandlerResult = { status?: number; data: unknown; message?: string } | { raw: true };

type Infer<S> = S extends z.ZodType ? z.infer<S> : undefined;

export interface RouteSpec<
  P extends z.ZodType | undefined,
  Q extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
  A extends RouteAuth = RouteAuth,
> {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Express-style path relative to `/api/v1`, e.g. `/tenants/:tenant_id`. */
  path: string;
  /** Stable name of the operation in the OpenAPI document: generated clients call it by this. */
  operationId: string;
  summary: string;
  tag: string;
  /** Roles allowed; `public` needs no credentials. */
  auth: A;
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the handler reads (documented as header parameters). */
  headers?: readonly RequestHeader[];
  /** Error statuses beyond those that follow from the route's kind (see `documentOperation`). */
  errors?: readonly ErrorStatus[];
  /** The success answer's media type when it is not the JSON envelope (documentation only). */
  produces?: 'text/event-stream' | 'image/*';
  /** Schema of `data` in the success envelope (documentation only). */
  response?: z.ZodType;
  /** Success status for documentation; handlers may override per call. Default 200. */
  status?: number;
  handler: (input: HandlerInput<Infer<P>, Infer<Q>, Infer<B>, A>) => Promise<HandlerResult>;
}

/** Lists every failing field (`details.fields`), as API.md requires. */
export function zodToValidationError(error: z.ZodError, where: 'body' | 'query' | 'params'): ValidationError {
  const fields = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const message =
      issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message;
    return { path: path === '' ? where : path, issue: message };
  });
  return new ValidationError(`invalid request ${where}`, fields);
}

export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: 'body' | 'query' | 'params',
): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw zodToValidationError(result.error, where);
  return result.data;
}

/**
 * API.md: the tenant comes from the credential, and a `tenant_id` in a query or body naming
 * another tenant is 403 ISOLATION_VIOLATION for anyone but a platform admin; an agent-bound
 * credential naming another `agent_id` likewise. Checked here, for every route, before the route's
 * own validation (which may not even know the field: it must not be silently ignored).
 */
function checkNamedContext(principal: Principal, req: Request, query: Record<string, unknown>): void {
  checkNamedIn(principal, query);
  const raw: unknown = req.body;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    checkNamedIn(principal, raw as Record<string, unknown>);
  }
}

function checkNamedIn(principal: Principal, source: Record<string, unknown>): void {
  const tenant = source.tenant_id;
  if (tenant !== undefined && principal.role !== 'platform_admin' && tenant !== principal.tenantId) {
    throw new IsolationViolationError('the credential does not allow this tenant');
  }
  const agent = source.agent_id;
  if (agent !== undefined && principal.agentId !== undefined && agent !== principal.agentId) {
    throw new IsolationViolationError('the credential is bound to another agent');
  }
}

function isEmpty(query: Record<string, unknown>): boolean {
  for (const key in query) if (Object.hasOwn(query, key)) return false;
  return true;
}

/** The query schema a route validates with: strict (unknown parameters refused), built once. */
function strictQuerySchema(schema: z.ZodType | undefined): z.ZodType {
  if (schema === undefined) return z.strictObject({});
  return schema instanceof z.ZodObject ? schema.strict() : schema;
}

/**
 * The query string through the route's schema, strictly: unknown parameters are refused like
 * unknown body fields (400, listed with the other failing fields), on routes with no query schema
 * too. A `tenant_id` naming the caller's own tenant is always allowed (API.md lets any request name
 * it; `checkNamedContext` refused every other value) and dropped before validation unless the
 * route's schema has the field.
 */
function parseQuery(
  strict: z.ZodType,
  acceptsTenantId: boolean,
  query: Record<string, unknown>,
  principal: Principal | undefined,
): unknown {
  let raw = query;
  if (principal && principal.role !== 'platform_admin' && !acceptsTenantId && 'tenant_id' in query) {
    raw = { ...query };
    delete raw.tenant_id;
  }
  return parseWith(strict, raw, 'query');
}

/**
 * Mounts a route and documents it from the same zod schemas: authorisation by role, validation of
 * params/query/body (unknown body fields rejected), then the handler, whose result is wrapped in
 * the success envelope. Errors go to the one error middleware.
 */
export function route<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  A extends RouteAuth = RouteAuth,
>(router: Router, registry: OpenAPIRegistry, spec: RouteSpec<P, Q, B, A>): void {
  documentOperation(registry, { ...spec, isPublic: spec.auth === 'public' });
  // Built once: a schema made per request would be compiled again by zod on its first parse.
  const strictQuery = strictQuerySchema(spec.query);
  const acceptsTenantId = spec.query instanceof z.ZodObject && 'tenant_id' in spec.query.shape;
  // Most requests have no query string: its parse (a valid one) is made once and shared, frozen so
  // that no handler can change what the next request sees.
  let emptyQuery: { value: unknown } | undefined;
  const parseEmptyQuery = (principal: Principal | undefined) => {
    if (emptyQuery) return emptyQuery.value;
    const value: unknown = parseQuery(strictQuery, acceptsTenantId, {}, principal);
    emptyQuery = { value: typeof value === 'object' && value !== null ? Object.freeze(value) : value };
    return emptyQuery.value;
  };
  router[spec.method](spec.path, (req: Request, res: Response, next: NextFunction) => {
    const run = async () => {
      const principal = res.locals.principal as Principal | undefined;
      if (spec.auth !== 'public') {
        if (!principal) throw new UnauthorizedError();
        if (!spec.auth.includes(principal.role)) throw new ForbiddenError('your role may not do this');
      }
      const rawQuery = queryOf(req, res);
      if (principal && spec.auth !== 'public') checkNamedContext(principal, req, rawQuery);
      const params = spec.params ? parseWith(spec.params, req.params, 'params') : undefined;
      const parsedQuery = isEmpty(rawQuery)
        ? parseEmptyQuery(principal)
        : parseQuery(strictQuery, acceptsTenantId, rawQuery, principal);
      const query = spec.query ? parsedQuery : undefined;
      const body = spec.body ? parseWith(spec.body, req.body ?? {}, 'body') : undefined;
      const result = await spec.handler({
        params: params as Infer<P>,
        query: query as Infer<Q>,
        body: body as Infer<B>,
        // Checked above: present unless the route is public.
        principal: principal as PrincipalOf<A>,
        req,
        res,
      });
      if ('raw' in result) return;
      sendOk(res, result.data, result.status ?? spec.status ?? 200, result.message);
    };
    run().catch(next);
  });
}
