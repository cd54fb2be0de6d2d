import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';

import type { Principal } from '../../auth/principal';
import { recentTenantIds } from '../../db/repositories/tenants';
import type { Role } from '../../domain/roles';
import { ForbiddenError, UnauthorizedError } from '../../errors';
import { PlatformAdminGate } from '../auth/platformAdmin';
import { route } from '../http/route';
import { ADMIN_UI_PATH, createBoard, tenantBoardQueues, TenantBoards } from './boardQueues';
import type { RouteContext } from './context';

export { ADMIN_UI_PATH } from './boardQueues';
/** Name of the dashboard's session cookie (the viewer's access token). */
export const ADMIN_UI_COOKIE = 'maihive_admin';

/** Tenants of the active set shown at most (in id order), besides the most recent ones. */
const MAX_ACTIVE_SHOWN = 100;

/**
 * The board's own page loads IBM Plex from fonts.googleapis.com; operators' browsers should make
 * no request outside this server, so the link is dropped (the page falls back to system fonts).
 */
const OUTSIDE_FONTS = /<link[^>]+href="https:\/\/fonts\.googleapis\.com[^>]*>/g;

/** Nothing but this server: scripts, styles (the board sets some inline), fonts, images, API calls. */
const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');
/** Most recently created tenants shown, whether or not they have work. */
const RECENT_SHOWN = 50;

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * The queue dashboard (bull-board) at `/admin/ui`: every tenant's queues for platform admins, a
 * read-only board of their own tenant's queues for tenant admins and operators. A browser cannot add
 * a bearer header to page loads, so besides `Authorization` the board accepts the admin's access
 * token in a cookie that `POST /admin/ui/session` sets: HttpOnly (no script reads it),
 * SameSite=Strict (no other site's page can send it, which is what keeps the board's own
 * state-changing calls safe from cross-site requests), Path-scoped to the board, and expiring with
 * the token. The token is checked on every request, so logout or revocation ends the session.
 */
export function adminUiRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;
  const gate = new PlatformAdminGate(deps);

  route(router, registry, {
    method: 'post',
    path: '/admin/ui/session',
    operationId: 'createAdminUiSession',
    errors: [401],
    summary: "Open a dashboard session: the viewer's access token as an HttpOnly cookie",
    tag: 'Queue administration',
    auth: 'public',
    body: z.strictObject({ access_token: z.string().min(1).max(4096) }),
    response: z.object({ expires_at: z.string() }),
    handler: async ({ body, req, res }) => {
      const admin = requireDashboardRole(await viewer(await gate.accessTokenPrincipal(body.access_token)));
      const expiresAtMs = (admin.expiresAt ?? 0) * 1000;
      res.cookie(ADMIN_UI_COOKIE, body.access_token, {
        httpOnly: true,
        sameSite: 'strict',
        secure: req.secure,
        path: ADMIN_UI_PATH,
        maxAge: Math.max(0, expiresAtMs - deps.clock.now()),
      });
      return { data: { expires_at: new Date(expiresAtMs).toISOString() } };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/admin/ui/session',
    operationId: 'deleteAdminUiSession',
    summary: 'Close the dashboard session (clears the cookie)',
    tag: 'Queue administration',
    auth: 'public',
    response: z.object({ closed: z.literal(true) }),
    handler: ({ res }) => {
      res.clearCookie(ADMIN_UI_COOKIE, { httpOnly: true, sameSite: 'strict', path: ADMIN_UI_PATH });
      return Promise.resolve({ data: { closed: true as const } });
    },
  });

  const { board, router: platformBoard } = createBoard('MaiHive queues', []);
  const tenantBoards = new TenantBoards(deps.queues);

  // One heartflow queue per tenant would be thousands of entries; the board shows the tenants
  // with recent work (the dispatchers' active set) and the newest tenants. The list is rebuilt on
  // every page load and API poll (one SMEMBERS and one small query; the UI polls every few
  // seconds), so a tenant appears as soon as it has work; concurrent requests share one rebuild.
  let refreshing: Promise<void> | undefined;
  const refresh = async () => {
    const [active, recent] = await Promise.all([
      deps.redis.smembers(deps.keys.activeTenants('heartflow')),
      deps.db.withPlatform((db) => recentTenantIds(db, RECENT_SHOWN)),
    ]);
    const tenantIds = [...new Set([...active.sort().slice(0, MAX_ACTIVE_SHOWN), ...recent])];
    board.replaceQueues(tenantIds.flatMap((tenantId) => tenantBoardQueues(deps.queues, tenantId, false)));
  };

  /** The board this request may see: all tenants for platform admins, else the caller's own, read-only. */
  const boardFor = async (req: Request, res: Response) => {
    let principal = res.locals.principal as Principal | undefined;
    // Headers, when present, were authenticated like on any route; otherwise the cookie speaks.
    if (!principal || principal.kind === 'legacy_anonymous') {
      const token = cookieValue(req.header('cookie'), ADMIN_UI_COOKIE);
      if (token === undefined) throw new UnauthorizedError();
      principal = await viewer(await gate.accessTokenPrincipal(token));
    }
    requireDashboardRole(principal);
    if (principal.role !== 'platform_admin') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new ForbiddenError("a tenant's dashboard is read-only");
      return tenantBoards.router(principal.tenantId!);
    }
    // Scripts, styles and fonts do not read the queue list.
    if (!req.path.startsWith('/static/')) {
      refreshing ??= refresh().finally(() => {
        refreshing = undefined;
      });
      await refreshing;
    }
    return platformBoard;
  };

  /** A cookie's principal of a tenant role must belong to an active tenant, as at the authenticator. */
  const viewer = async (principal: Principal): Promise<Principal> => {
    if (principal.role === 'platform_admin') return principal;
    const meta = principal.tenantId === undefined ? undefined : await deps.tenants.get(principal.tenantId);
    if (!meta || meta.status !== 'active') throw new UnauthorizedError();
    return principal;
  };

  router.use('/admin/ui', (req: Request, res: Response, next: NextFunction) => {
    boardFor(req, res).then((board) => {
      res.setHeader('Content-Security-Policy', BOARD_CSP);
      const send = res.send.bind(res);
      res.send = (body?: unknown) => send(typeof body === 'string' ? body.replace(OUTSIDE_FONTS, '') : body);
      board(req, res, next);
    }, next);
  });
}

/** Who may open the dashboard: platform admins (every tenant), tenant admins and operators (their own). */
const DASHBOARD_ROLES: readonly Role[] = ['platform_admin', 'tenant_admin', 'operator'];

function requireDashboardRole(principal: Principal | undefined): Principal {
  if (!principal || principal.kind === 'legacy_anonymous') throw new UnauthorizedError();
  if (
    !DASHBOARD_ROLES.includes(principal.role) ||
    (principal.role !== 'platform_admin' && !principal.tenantId)
  ) {
    throw new ForbiddenError('platform admins, tenant admins and operators only');
  }
  return principal;
}
