import path from 'node:path';

import express, { type Request, type Response, Router } from 'express';

import { sendOk } from '../envelope';

/** Where the API reference page lives. */
export const DOCS_PATH = '/api/v1/docs';

/** What `/` and `/api/v1/` point a newcomer to. */
const POINTERS = {
  docs: DOCS_PATH,
  openapi: '/api/v1/openapi.json',
  health: '/api/v1/health',
  ready: '/api/v1/ready',
  /** Platform admins; a browser opens a session with `POST /api/v1/admin/ui/session` first. */
  dashboard: '/api/v1/admin/ui',
} as const;

// Scripts are files (no inline script), so the default Content-Security-Policy holds; Swagger UI's
// inline styles are what helmet's default `style-src 'unsafe-inline'` allows.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MaiHive API</title>
<link rel="stylesheet" href="${DOCS_PATH}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_PATH}/assets/swagger-ui-bundle.js"></script>
<script src="${DOCS_PATH}/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(POINTERS.openapi)},
  dom_id: '#swagger-ui',
  deepLinking: true,
  persistAuthorization: true,
});
`;

const POINTER_PAGE = (version: string) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>MaiHive ${version}</title></head>
<body>
<h1>MaiHive ${version}</h1>
<ul>
<li><a href="${POINTERS.docs}">API reference</a> (<a href="${POINTERS.openapi}">OpenAPI document</a>)</li>
<li><a href="${POINTERS.health}">Health</a>, <a href="${POINTERS.ready}">readiness</a></li>
<li>Queue dashboard: <a href="${POINTERS.dashboard}">${POINTERS.dashboard}</a> (platform admins)</li>
</ul>
</body>
</html>
`;

/** The directory of Swagger UI's prebuilt files, from the npm package (no CDN). */
function swaggerUiDir(): string {
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

/** Every path `docsRoutes` answers (see `gatedRouter`). */
export const DOCS_PATHS = { exact: ['/', '/api/v1'], prefixes: [DOCS_PATH] } as const;

/**
 * The API reference page (Swagger UI over `/api/v1/openapi.json`, served from the npm package),
 * and the pointers at `/` and `/api/v1/`: HTML for browsers, the JSON envelope for everyone else.
 */
export function docsRoutes(version: string): Router {
  const router = Router();
  const pointers = (req: Request, res: Response) => {
    if (req.accepts(['json', 'html']) === 'html') {
      res.type('html').send(POINTER_PAGE(version));
      return;
    }
    sendOk(res, { name: 'MaiHive API', version, ...POINTERS });
  };
  router.get('/', pointers);
  router.get('/api/v1', pointers);
  router.get(DOCS_PATH, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });
  router.get(`${DOCS_PATH}/init.js`, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('js').send(INIT);
  });
  router.use(`${DOCS_PATH}/assets`, express.static(swaggerUiDir(), { index: false, maxAge: '1d' }));
  return router;
}
