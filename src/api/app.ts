import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { z } from 'zod';

import { Authenticator } from '../auth/authenticate';
import type { Dependencies } from '../dependencies';
import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import type { Logger } from '../logger';
import { errorHandler, type RequestLocals, sendError } from './envelope';
import { DOCS_PATHS, docsRoutes } from './http/docsPage';
import { earlyRateRefusal, refusedTenantOf } from './http/earlyRefusal';
import { assertUtf8Body, rejectUnsafeInput } from './http/inputSafety';
import { ApiMetrics } from './http/metrics';
import { createOpenApiRegistry, generateOpenApiDocument } from './http/openapiDocument';
import { gatedRouter } from './http/pathGate';
import { keepRawBody } from './http/rawBody';
import type { RefusalLog } from './http/refusalLog';
import { assignRequestId } from './requestId';
import { BASE_PATHS, baseRoutes } from './routes/base';
import { mountRoutes } from './routes/index';
import { METRICS_PATHS, metricsRoutes } from './routes/metrics';

extendZodWithOpenApi(z);

/**
 * helmet's headers (default options: no nonces, nothing read from the request) are the same for
 * every response, so they are worked out once and then set in a loop, without helmet's chain of a
 * dozen middlewares per request. Returns undefined should helmet ever not finish synchronously:
 * then it runs per request.
 */
function fixedSecurityHeaders():
  { set: [string, string | number | readonly string[]][]; removed: string[] } | undefined {
  const middleware = helmet();
  const set: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  const probe = {
    setHeader: (name: string, value: string | number | readonly string[]) => void set.push([name, value]),
    removeHeader: (name: string) => void removed.push(name),
  };
  let finished = false;
  try {
    middleware({} as Request, probe as unknown as Response, (err?: unknown) => {
      finished = err === undefined;
    });
  } catch {
    finished = false;
  }
  return finished ? { set, removed } : undefined;
}

/** What the first middleware keeps about a request in `res.locals`. */
interface LifecycleLocals extends RequestLocals {
  /** `performance.now()` when the request arrived, ms. */
  startedAt: number;
}

/**
 * The first middleware of every request, as one layer: the request id, the security headers, and
 * ONE `close` listener (a function made once per app, not per request) that counts and times the
 * response (`ApiMetrics`) and writes the access-log line. `close` follows every response, finished
 * or aborted (`writableFinished` tells which), so a single listener serves both; four middlewares
 * and three listeners per request cost a router step and a closure each.
 *
 * The access log: one line per response, `request completed` (info, warn for 4xx) or `request
 * errored` (error, 5xx) with the request id, method, URL, status and time in ms; never headers,
 * which carry credentials. Nothing is logged when the logger's level would drop every line. A 429
 * goes to `refusals` (one summed line per tenant and interval) and has its own line at debug only.
 */
function requestLifecycle(
  logger: Logger,
  metrics: ApiMetrics,
  refusals: RefusalLog,
): (req: Request, res: Response, next: NextFunction) => void {
  const headers = fixedSecurityHeaders();
  const helmetEach = headers ? undefined : helmet();
  function onClose(this: Response): void {
    const locals = this.locals as Partial<LifecycleLocals>;
    const ms = performance.now() - (locals.startedAt ?? performance.now());
    const req = this.req;
    if (this.writableFinished) metrics.record(req, this, ms);
    const status = this.statusCode;
    const refused = status === 429;
    if (refused) refusals.note(refusedTenantOf(this), locals.refusal ?? 'unknown');
    const level = status >= 500 ? 'error' : refused ? 'debug' : status >= 400 ? 'warn' : 'info';
    if (!logger.isLevelEnabled(level)) return;
    const line = {
      req: { id: locals.requestId, method: req.method, url: req.originalUrl },
      res: { statusCode: status },
      responseTime: Math.round(ms),
    };
    if (refused) {
      logger.debug(line, 'request refused');
    } else if (status >= 500) {
      logger.error({ ...line, err: new Error(`failed with status code ${status}`) }, 'request errored');
    } else {
      logger[level](line, 'request completed');
    }
  }
  return (req, res, next) => {
    (res.locals as LifecycleLocals).startedAt = performance.now();
    assignRequestId(req, res);
    res.once('close', onClose);
    if (headers) {
      for (const name of headers.removed) res.removeHeader(name);
      for (const [name, value] of headers.set) res.setHeader(name, value);
      return next();
    }
    helmetEach!(req, res, next);
  };
}

/** A body on a JSON route must be JSON (415 otherwise). */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is('application/json')) {
    return next(new UnsupportedMediaTypeError('expected Content-Type: application/json'));
  }
  next();
}

/**
 * The JSON body: parsed (`parser`), its errors mapped to the contract's codes, then checked by
 * `rejectUnsafeInput`; one router layer instead of three.
 */
function requestBody(parser: (req: Request, res: Response, next: NextFunction) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    parser(req, res, (err?: unknown) => {
      if (err) bodyParserErrors(err, req, res, next);
      else rejectUnsafeInput(req, res, next);
    });
  };
}

/** body-parser's errors, mapped to the contract's codes. */
function bodyParserErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number; message?: string };
  if (e.type === 'entity.too.large') return next(new PayloadTooLargeError('request body too large'));
  if (e.type === 'encoding.invalid_utf8') {
    return next(new ValidationError('malformed body', [{ path: 'body', issue: 'not valid UTF-8' }]));
  }
  if (e.type === 'entity.parse.failed') {
    return next(new ValidationError('malformed JSON body', [{ path: '', issue: 'body is not valid JSON' }]));
  }
  next(err);
}

export function createApp(deps: Dependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Every envelope carries its own request_id and timestamp, so an ETag computed from the body
  // (a hash per response) could never match a later one. The one static document sets its own.
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  const metrics = new ApiMetrics(deps);
  deps.processBeat.addRole('api');
  app.use(requestLifecycle(deps.logger, metrics, deps.refusalLog));

  const authenticator = new Authenticator({
    tokens: deps.tokens,
    tenants: deps.tenants,
    apiKeys: deps.apiKeys,
    db: deps.db,
    redis: deps.redis,
    keys: deps.keys,
    legacyAnonymous: deps.config.legacyAnonymous,
    now: () => deps.clock.now(),
  });
  const registry = createOpenApiRegistry();
  // The public token keys as a plain JWKS document (what JWT libraries fetch), not enveloped like
  // the API's answers, and served before the authenticator: verifiers need no credentials.
  const jwksJson = JSON.stringify(deps.tokens.publicKeys());
  app.get('/api/v1/auth/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type('json').send(jwksJson);
  });

  const v1 = express.Router();
  v1.use(gatedRouter(BASE_PATHS, baseRoutes(deps)));
  // Before the authenticator: the scraper's METRICS_TOKEN bearer is not a JWT.
  v1.use(gatedRouter(METRICS_PATHS, metricsRoutes(deps, metrics)));
  // A sender its rate limit refused a moment ago is refused again before authentication and
  // before its body is read: a flood over its rate costs a digest and a lookup per request.
  const early = earlyRateRefusal(); // wall-clock time, like the buckets (Redis TIME)
  v1.post('/chat/send', early.refuse);
  // Authentication, then admission before the body is read (a request the gate turns away costs
  // no parse), then the JSON check: one layer.
  v1.use(authenticateRequests(authenticator, deps.ingress.middleware()));
  v1.use(
    requestBody(
      express.json({
        limit: deps.config.maxBodyBytes,
        strict: true,
        verify: (req, res, buf) => {
          assertUtf8Body(req, res, buf);
          keepRawBody(req, res, buf);
        },
      }),
    ),
  );
  mountRoutes({ router: v1, registry, deps });
  v1.use(early.remember);
  const openapi = generateOpenApiDocument(registry, deps.version);
  const openapiJson = JSON.stringify(openapi);
  const openapiTag = `"${createHash('sha1').update(openapiJson).digest('base64url')}"`;
  app.get('/api/v1/openapi.json', (_req, res) => {
    // res.send answers 304 when If-None-Match names this tag.
    res.setHeader('ETag', openapiTag);
    res.type('json').send(openapiJson);
  });
  app.use(gatedRouter(DOCS_PATHS, docsRoutes(deps.version)));
  app.use('/api/v1', v1);

  app.use((_req: Request, res: Response) => sendError(res, 404, 'NOT_FOUND', 'no such route'));
  app.use(errorHandler(deps.logger, { refusalJitterMs: deps.config.ingress.refusalJitterMs }));
  return app;
}

/**
 * Sets `res.locals.principal` (undefined: anonymous) before any route runs, then runs the ingress
 * gate and `requireJson`: three steps in one router layer.
 */
function authenticateRequests(
  authenticator: Authenticator,
  gate: (req: Request, res: Response, next: NextFunction) => void,
) {
  return (req: Request, res: Response, next: NextFunction) => {
    authenticator.authenticate(req).then((principal) => {
      res.locals.principal = principal;
      gate(req, res, (err?: unknown) => (err ? next(err) : requireJson(req, res, next)));
    }, next);
  };
}
