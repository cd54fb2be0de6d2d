import { extendZodWithOpenApi, OpenApiGeneratorV3, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { z } from 'zod';

import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import { Authenticator } from './auth/authenticate';
import type { Dependencies } from './dependencies';
import { errorHandler, sendError } from './envelope';
import { requestId } from './requestId';
import { baseRoutes } from './routes/base';
import { mountRoutes } from './routes/index';

extendZodWithOpenApi(z);

/** A body on a JSON route must be JSON (415 otherwise). */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is('application/json')) {
    return next(new UnsupportedMediaTypeError('expected Content-Type: application/json'));
  }
  next();
}

/** body-parser's errors, mapped to the contract's codes. */
function bodyParserErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number; message?: string };
  if (e.type === 'entity.too.large') return next(new PayloadTooLargeError('request body too large'));
  if (e.type === 'entity.parse.failed') {
    return next(new ValidationError('malformed JSON body', [{ path: '', issue: 'body is not valid JSON' }]));
  }
  next(err);
}

export function createApp(deps: Dependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestId);
  app.use(helmet());
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (_req, res) => String(res.getHeader('X-Request-Id')),
      // Method, path and status are enough per line; headers (and their credentials) stay out.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    }),
  );
  app.use(requireJson);
  app.use(express.json({ limit: deps.config.maxBodyBytes, strict: true }));
  app.use(bodyParserErrors);

  const authenticator = new Authenticator({
    tokens: deps.tokens,
    tenants: deps.tenants,
    db: deps.db,
    redis: deps.redis,
    keys: deps.keys,
    legacyAnonymous: deps.config.legacyAnonymous,
    now: () => deps.clock.now(),
  });
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
  });

  const v1 = express.Router();
  v1.use(baseRoutes(deps));
  v1.use(authenticator.middleware());
  mountRoutes({ router: v1, registry, deps });
  const openapi = new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: { title: 'MaiHive API', version: deps.version },
    servers: [{ url: '/' }],
  });
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/api/v1', v1);

  app.use((_req: Request, res: Response) => sendError(res, 404, 'NOT_FOUND', 'no such route'));
  app.use(errorHandler(deps.logger));
  return app;
}
