import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';

import type { Principal } from '../../auth/principal';
import { recentTenantIds } from '../../db/repositories/tenants';
import { UnauthorizedError } from '../../errors';
import { PlatformAdminGate, requirePlatformAdmin } from '../auth/platformAdmin';
import { JOB_KINDS, type JobKind } from '../../queues/names';
import { route } from '../http/route';
import type { RouteContext } from './context';

/** Where the dashboard lives; the cookie is scoped to it and nothing else. */
export const ADMIN_UI_PATH = '/api/v1/admin/ui';
/** Name of the dashboard's session cookie (the platform admin's access token). */
export const ADMIN_UI_COOKIE = 'maihive_admin';

/** Tenants of the active set shown at most (in id order), besides the most recent ones. */
const MAX_ACTIVE_SHOWN = 100;

const KIND_DESCRIPTIONS: Record<JobKind, string> = {
  heartflow: 'Messages to answer',
  memory: 'Memory extraction',
  stats: 'Usage statistics',
  delivery: 'Reply deliveries (webhooks, OneBot)',
};

/** Where the board shows waiting work: BullMQ files a job with a priority as "prioritized". */
const WAITING_NOTE =
  'Every MaiHive job has a priority, so jobs waiting their turn are listed under PRIORITIZED (BullMQ keeps WAITING for jobs without one).';

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
 * The queue dashboard (bull-board) at `/admin/ui`, for platform admins only. A browser cannot add
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
    summary: "Open a dashboard session: the platform admin's access token as an HttpOnly cookie",
    tag: 'Queue administration',
    auth: 'public',
    body: z.strictObject({ access_token: z.string().min(1).max(4096) }),
    response: z.object({ expires_at: z.string() }),
    handler: async ({ body, req, res }) => {
      const admin = await gate.fromAccessToken(body.access_token);
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

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_UI_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'MaiHive queues',
        // The board counts BullMQ Workers by their Redis client names; MaiHive's dispatchers serve
        // every tenant's queues from one shared backend, so it would show "No workers" while they
        // are busy. `/admin/queues` says what the dispatchers hold.
        showWorkers: false,
        overview: { groupByDelimiter: true },
      },
    },
  });

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
    board.replaceQueues(
      tenantIds.flatMap((tenantId) =>
        JOB_KINDS.map(
          (kind) =>
            new BullMQAdapter(deps.queues.queue(tenantId, kind), {
              displayName: `${tenantId}.${kind}`,
              delimiter: '.',
              description: `${KIND_DESCRIPTIONS[kind]} of tenant ${tenantId}. ${WAITING_NOTE}`,
            }),
        ),
      ),
    );
  };

  const authorize = async (req: Request, res: Response): Promise<void> => {
    const principal = res.locals.principal as Principal | undefined;
    // Headers, when present, were authenticated like on any route; otherwise the cookie speaks.
    if (principal && principal.kind !== 'legacy_anonymous') requirePlatformAdmin(principal);
    else {
      const token = cookieValue(req.header('cookie'), ADMIN_UI_COOKIE);
      if (token === undefined) throw new UnauthorizedError();
      await gate.fromAccessToken(token);
    }
    // Scripts, styles and fonts do not read the queue list.
    if (!req.path.startsWith('/static/')) {
      refreshing ??= refresh().finally(() => {
        refreshing = undefined;
      });
      await refreshing;
    }
  };

  router.use(
    '/admin/ui',
    (req: Request, res: Response, next: NextFunction) => {
      authorize(req, res).then(() => next(), next);
    },
    (_req: Request, res: Response, next: NextFunction) => {
      res.setHeader('Content-Security-Policy', BOARD_CSP);
      const send = res.send.bind(res);
      res.send = (body?: unknown) => send(typeof body === 'string' ? body.replace(OUTSIDE_FONTS, '') : body);
      next();
    },
    serverAdapter.getRouter() as (req: Request, res: Response, next: NextFunction) => void,
  );
}
