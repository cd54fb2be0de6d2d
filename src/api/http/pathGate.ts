import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** The paths a gated router answers: exact paths, and whole subtrees under a prefix. */
export interface GatePaths {
  exact?: readonly string[];
  prefixes?: readonly string[];
}

/**
 * Whether `path` may reach a router whose routes are `paths`, matched as Express matches them
 * (case-insensitive, a trailing slash allowed): a superset test, never a stricter one.
 */
export function mayMatch(path: string, paths: GatePaths): boolean {
  let p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  p = p.toLowerCase();
  if (paths.exact?.includes(p)) return true;
  return paths.prefixes?.some((prefix) => p === prefix || p.startsWith(`${prefix}/`)) ?? false;
}

/**
 * `router` entered only by requests whose path it may answer. Entering an Express router costs
 * every request its dispatch (closures, the URL re-parsed, each route tried): the routers mounted
 * ahead of the API's own (the docs pages, `/health`, `/metrics`) were entered by every send.
 */
export function gatedRouter(paths: GatePaths, router: RequestHandler): RequestHandler {
  for (const p of [...(paths.exact ?? []), ...(paths.prefixes ?? [])]) {
    if (p !== p.toLowerCase() || (p.length > 1 && p.endsWith('/'))) {
      throw new Error(`gated path "${p}" must be lower case without a trailing slash`);
    }
  }
  return (req: Request, res: Response, next: NextFunction) => {
    if (mayMatch(req.path, paths)) return router(req, res, next);
    next();
  };
}
