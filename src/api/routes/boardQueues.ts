import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { NextFunction, Request, Response } from 'express';

import { JOB_KINDS, type JobKind } from '../../queues/names';
import type { TenantQueues } from '../../queues/tenantQueues';

/** Where the dashboard lives; the cookie is scoped to it and nothing else. */
export const ADMIN_UI_PATH = '/api/v1/admin/ui';

type Handler = (req: Request, res: Response, next: NextFunction) => void;

const KIND_DESCRIPTIONS: Record<JobKind, string> = {
  heartflow: 'Messages to answer',
  memory: 'Memory extraction',
  stats: 'Usage statistics',
  delivery: 'Reply deliveries (webhooks, OneBot)',
};

/** Where the board shows waiting work: BullMQ files a job with a priority as "prioritized". */
const WAITING_NOTE =
  'Every MaiHive job has a priority, so jobs waiting their turn are listed under PRIORITIZED (BullMQ keeps WAITING for jobs without one).';

/** The board's adapters of every job kind of one tenant, grouped under the tenant in the menu. */
export function tenantBoardQueues(
  queues: TenantQueues,
  tenantId: string,
  readOnlyMode: boolean,
): BullMQAdapter[] {
  return JOB_KINDS.map(
    (kind) =>
      new BullMQAdapter(queues.queue(tenantId, kind), {
        displayName: `${tenantId}.${kind}`,
        delimiter: '.',
        description: `${KIND_DESCRIPTIONS[kind]} of tenant ${tenantId}. ${WAITING_NOTE}`,
        readOnlyMode,
      }),
  );
}

/** A bull-board instance at the dashboard's path; `replaceQueues` changes what it shows. */
export function createBoard(title: string, queues: BullMQAdapter[]) {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_UI_PATH);
  const board = createBullBoard({
    queues,
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: title,
        // The board counts BullMQ Workers by their Redis client names; MaiHive's dispatchers serve
        // every tenant's queues from one shared backend, so it would show "No workers" while they
        // are busy. `/admin/queues` says what the dispatchers hold.
        showWorkers: false,
        overview: { groupByDelimiter: true },
      },
    },
  });
  return { board, router: serverAdapter.getRouter() as Handler };
}

/**
 * Read-only boards of one tenant each, for its admins and operators: built on first use, at most
 * `max` kept (least recently used dropped). A board of its own per tenant rather than one board
 * whose queue list changes per request: requests of two tenants may be served at once.
 */
export class TenantBoards {
  private readonly boards = new Map<string, { router: Handler; queue: unknown }>();

  constructor(
    private readonly queues: TenantQueues,
    private readonly max = 100,
  ) {}

  router(tenantId: string): Handler {
    // A tenant deleted and created again has new queue objects: its old board would hold closed ones.
    const queue = this.queues.queue(tenantId, 'heartflow');
    const cached = this.boards.get(tenantId);
    this.boards.delete(tenantId);
    if (cached?.queue === queue) {
      this.boards.set(tenantId, cached);
      return cached.router;
    }
    const { router } = createBoard(`MaiHive · ${tenantId}`, tenantBoardQueues(this.queues, tenantId, true));
    this.boards.set(tenantId, { router, queue });
    if (this.boards.size > this.max) this.boards.delete(this.boards.keys().next().value!);
    return router;
  }
}
