import type { TenantDb } from '../database';

export type DeliveryStatus = 'delivered' | 'dead_letter' | 'requeued';

export interface DeliveryRow {
  tenant_id: string;
  message_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  status: DeliveryStatus;
  webhook_url: string;
  attempts: number;
  last_http_status: number | null;
  last_error: string | null;
  requeue_count: number;
  created_at: Date;
  updated_at: Date;
  delivered_at: Date | null;
  /** The platform's id of the reply (OneBot `message_id`), when the route returns one. */
  platform_message_id: string | null;
}

export interface DeliveryRecord {
  messageId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  webhookUrl: string;
  /** Attempts made by the job that ends here. */
  attempts: number;
  httpStatus: number | null;
  error: string | null;
  /** The platform's id of the delivered reply (OneBot deliveries). */
  platformMessageId?: string | null;
}

export async function getDelivery(db: TenantDb, messageId: string): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    'SELECT * FROM deliveries WHERE tenant_id = $1 AND message_id = $2',
    [db.ctx.tenantId, messageId],
  );
  return rows[0];
}

async function upsert(db: TenantDb, status: 'delivered' | 'dead_letter', r: DeliveryRecord): Promise<void> {
  await db.query(
    `INSERT INTO deliveries (tenant_id, message_id, agent_id, platform, chat_stream_id, status, webhook_url,
                             attempts, last_http_status, last_error, delivered_at, platform_message_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $6 = 'delivered' THEN now() END, $11)
     ON CONFLICT (tenant_id, message_id) DO UPDATE SET
       status = EXCLUDED.status, webhook_url = EXCLUDED.webhook_url, attempts = EXCLUDED.attempts,
       last_http_status = EXCLUDED.last_http_status, last_error = EXCLUDED.last_error,
       delivered_at = EXCLUDED.delivered_at,
       platform_message_id = COALESCE(EXCLUDED.platform_message_id, deliveries.platform_message_id),
       updated_at = now()`,
    [
      db.ctx.tenantId,
      r.messageId,
      r.agentId,
      r.platform,
      r.chatStreamId,
      status,
      r.webhookUrl,
      r.attempts,
      r.httpStatus,
      r.error,
      r.platformMessageId ?? null,
    ],
  );
}

/** The receiver acknowledged the message; later jobs for it do nothing. */
export function markDelivered(db: TenantDb, r: DeliveryRecord): Promise<void> {
  return upsert(db, 'delivered', { ...r, error: null });
}

/**
 * The platform's id of a delivered reply, told later than the delivery (maim_message's
 * `message_id_echo`). False when the unit's agent has no delivery of that message (yet).
 */
export async function recordPlatformMessageId(
  db: TenantDb,
  messageId: string,
  platformMessageId: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deliveries SET platform_message_id = $3, updated_at = now()
     WHERE tenant_id = $1 AND message_id = $2 AND agent_id = $4`,
    [db.ctx.tenantId, messageId, platformMessageId, db.ctx.agentId],
  );
  return (rowCount ?? 0) > 0;
}

/** Every attempt failed (or the receiver refused for good): an operator may retry it. */
export function markDeadLetter(db: TenantDb, r: DeliveryRecord): Promise<void> {
  return upsert(db, 'dead_letter', r);
}

/** Dead letters of the unit's tenant, newest first, optionally of one agent. */
export async function listDeadLetters(
  db: TenantDb,
  args: { agentId?: string | undefined; limit: number; offset?: number },
): Promise<{ items: DeliveryRow[]; total: number }> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT * FROM deliveries
     WHERE tenant_id = $1 AND status = 'dead_letter' AND ($2::text IS NULL OR agent_id = $2)
     ORDER BY updated_at DESC, message_id DESC LIMIT $3 OFFSET $4`,
    [db.ctx.tenantId, args.agentId ?? null, args.limit, args.offset ?? 0],
  );
  const count = await db.query<{ total: string }>(
    `SELECT count(*) AS total FROM deliveries
     WHERE tenant_id = $1 AND status = 'dead_letter' AND ($2::text IS NULL OR agent_id = $2)`,
    [db.ctx.tenantId, args.agentId ?? null],
  );
  return { items: rows, total: Number(count.rows[0]?.total ?? 0) };
}

/**
 * Takes a dead letter back for another round of attempts: status `requeued`, `requeue_count`
 * bumped (it names the new job). Undefined when the message is not dead-lettered (any more).
 */
export async function requeueDeadLetter(db: TenantDb, messageId: string): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    `UPDATE deliveries SET status = 'requeued', requeue_count = requeue_count + 1, updated_at = now()
     WHERE tenant_id = $1 AND message_id = $2 AND status = 'dead_letter'
     RETURNING *`,
    [db.ctx.tenantId, messageId],
  );
  return rows[0];
}
