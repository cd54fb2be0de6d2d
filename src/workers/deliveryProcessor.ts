import type { Job } from 'bullmq';

import type { Database } from '../db/database';
import {
  type DeliveryRecord,
  getDelivery,
  markDeadLetter,
  markDelivered,
  requeueDeadLetter,
} from '../db/repositories/deliveries';
import { getMessage, type MessageRow } from '../db/repositories/messages';
import { webhookSignatureHeaders } from '../delivery/signature';
import type { SocketRelay } from '../delivery/socketRelay';
import type { StoredAgentDeliverySettings } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import { createIsolationContext } from '../domain/isolationContext';
import { MaiHiveError, UnrecoverableJobError } from '../errors';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { TenantQueues } from '../queues/tenantQueues';
import { assertJobTenant, attemptOf, type DeliveryJobData, enqueueDelivery, type JobAttempt } from './jobs';
import {
  deliverySettingsOfReply,
  type OneBotDeliveryDeps,
  type OneBotDeliveryOutcome,
  processOneBotDelivery,
} from './onebotDelivery';

export interface DeliveryDeps {
  db: Database;
  logger: Logger;
  clock: Clock;
  /** The chat's effective configuration: where its replies go (`delivery`, any scope). */
  config: OneBotDeliveryDeps['config'];
  /** Per attempt, connect to last byte, ms. Default 10000. */
  timeoutMs?: number;
  /** HTTP client. Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Opens agents' sealed webhook secrets. Without it, a delivery whose secret is sealed gives up. */
  secretBox?: SecretBox;
  /** Reaches chat sockets: OneBot reverse WebSockets, maim_message adapters (`onebotDelivery.ts`). */
  sockets?: SocketRelay;
}

export const DELIVERY_EVENT = 'message.replied';
/** Longest error text kept in a dead letter, characters. */
const MAX_ERROR = 500;

export type DeliveryOutcome =
  | { status: 'delivered'; httpStatus: number; attempt: number }
  | { status: 'skipped'; reason: 'no_webhook' | 'message_not_found' | 'not_a_reply' | 'already_delivered' }
  | OneBotDeliveryOutcome;

/** A webhook attempt that failed in a way a later attempt may not (5xx, 408, 429, timeout, network). */
export class WebhookDeliveryError extends MaiHiveError {
  readonly code = 'WEBHOOK_DELIVERY_FAILED';
  readonly status = 502;
  constructor(
    message: string,
    readonly httpStatus: number | null,
    options: { cause?: unknown } = {},
  ) {
    super(message, { details: { http_status: httpStatus }, ...options });
  }
}

/**
 * What a receiver's answer means: 2xx delivered; 408, 429 and 5xx may pass later (retry); any
 * other status, redirects included, will not (the URL or the receiver needs fixing: give up and
 * dead-letter at once).
 */
export function classifyWebhookStatus(status: number): 'delivered' | 'retry' | 'give_up' {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'give_up';
}

/** The JSON body of a `message.replied` delivery (the same bytes on every attempt). */
export function deliveryBody(tenantId: string, m: MessageRow): string {
  return JSON.stringify({
    event: DELIVERY_EVENT,
    tenant_id: tenantId,
    agent_id: m.agent_id,
    platform: m.platform,
    chat_stream_id: m.chat_stream_id,
    message_id: m.message_id,
    reply_to: m.reply_to,
    content: m.content,
    created_at: m.created_at.toISOString(),
  });
}

interface Target {
  message: MessageRow;
  url: string;
  delivery: StoredAgentDeliverySettings;
}

/** Why a sealed webhook secret could not be opened: said in the log and in the dead letter. */
const UNOPENABLE_SECRET =
  'the stored webhook secret cannot be opened with MAIHIVE_SECRET_KEY: the server key was changed ' +
  '(set the old one in MAIHIVE_SECRET_KEY_PREVIOUS) or the stored secret was altered';

/**
 * The agent's signing secret in plaintext, for this attempt only; undefined when the agent has
 * none (the delivery goes unsigned). A secret still stored in plaintext (a row from before
 * secrets were sealed, until the start-up pass seals it) is used as it is.
 */
function openWebhookSecret(
  delivery: StoredAgentDeliverySettings,
  box: SecretBox | undefined,
): string | undefined {
  if (delivery.webhook_secret_encrypted === undefined) return delivery.webhook_secret;
  if (!box) throw new Error('no server key to open it');
  return box.decrypt(delivery.webhook_secret_encrypted);
}

type Skip = { skip: Extract<DeliveryOutcome, { status: 'skipped' }>['reason'] };
type Loaded = { target: Target } | Skip;

/**
 * One attempt to push a bot reply to its chat's webhook, signed with the secret set beside that URL
 * (see `delivery/signature.ts`, `deliverySettingsOf`). The message is read in a unit of work of
 * the job's tenant and agent, and the URL and secret are the effective `delivery` configuration of
 * that message's own chat (tenant < agent < platform < chat, read through `effectiveConfig`), so a
 * job can only ever send its own tenant's message with its own tenant's secret; a message id of
 * another tenant is simply not found. The secret is stored sealed (`webhook_secret_encrypted`)
 * and opened here, with the worker's server key, only to sign.
 *
 * Failures are thrown for BullMQ to handle: `WebhookDeliveryError` is retried with the job's
 * exponential backoff, `UnrecoverableJobError` is not. The attempt that gives up (a refusal, or the
 * last attempt) first writes the dead letter operators list and retry.
 */
export async function processDeliveryJob(
  deps: DeliveryDeps,
  data: DeliveryJobData,
  attempt: JobAttempt,
): Promise<DeliveryOutcome> {
  // A QQ reply goes back through OneBot when it has a route there; the webhook otherwise.
  const oneBot = await processOneBotDelivery(deps, data, attempt);
  if (oneBot) return oneBot;
  const ctx = createIsolationContext({ tenantId: data.tenantId, agentId: data.agentId });
  const found = await deps.db.withTenant(ctx, async (db): Promise<{ message: MessageRow } | Skip> => {
    const message = await getMessage(db, data.messageId);
    if (!message || message.agent_id !== data.agentId) return { skip: 'message_not_found' };
    if (message.direction !== 'out') return { skip: 'not_a_reply' };
    if ((await getDelivery(db, data.messageId))?.status === 'delivered') return { skip: 'already_delivered' };
    return { message };
  });
  let loaded: Loaded;
  if ('skip' in found) loaded = found;
  else {
    // The chat's webhook, at whichever scope it is set (and the secret of that same scope).
    const delivery = await deliverySettingsOfReply(deps, data.tenantId, found.message);
    loaded = delivery.webhook_url
      ? { target: { message: found.message, url: delivery.webhook_url, delivery } }
      : { skip: 'no_webhook' };
  }
  const log = deps.logger.child({
    agent_id: data.agentId,
    message_id: data.messageId,
    attempt: attempt.attempt,
  });
  if ('skip' in loaded) {
    log.debug({ reason: loaded.skip }, 'delivery skipped');
    return { status: 'skipped', reason: loaded.skip };
  }
  const { message, url } = loaded.target;
  const record: Omit<DeliveryRecord, 'httpStatus' | 'error'> = {
    messageId: message.message_id,
    agentId: message.agent_id,
    platform: message.platform,
    chatStreamId: message.chat_stream_id,
    webhookUrl: url,
    attempts: attempt.attempt,
  };
  let secret: string | undefined;
  try {
    secret = openWebhookSecret(loaded.target.delivery, deps.secretBox);
  } catch (err) {
    // Never sent unsigned instead, and no later attempt would do better: every delivery of the
    // agent fails until an operator acts, so say so loudly, and dead-letter it for a retry then.
    log.error({ err }, UNOPENABLE_SECRET);
    await deps.db.withTenant(ctx, (db) =>
      markDeadLetter(db, { ...record, httpStatus: null, error: UNOPENABLE_SECRET }),
    );
    throw new UnrecoverableJobError(UNOPENABLE_SECRET);
  }
  const sent = await post(
    deps,
    url,
    secret,
    deliveryBody(data.tenantId, message),
    message.message_id,
    attempt,
  );
  const host = new URL(url).host;
  if (sent.kind === 'delivered') {
    await deps.db.withTenant(ctx, (db) =>
      markDelivered(db, { ...record, httpStatus: sent.status, error: null }),
    );
    log.info({ host, http_status: sent.status }, 'webhook delivered');
    return { status: 'delivered', httpStatus: sent.status, attempt: attempt.attempt };
  }
  const final = sent.kind === 'give_up' || attempt.attempt >= attempt.maxAttempts;
  if (final) {
    await deps.db.withTenant(ctx, (db) =>
      markDeadLetter(db, { ...record, httpStatus: sent.status, error: sent.error.slice(0, MAX_ERROR) }),
    );
  }
  log.warn({ host, http_status: sent.status, err: sent.error, final }, 'webhook delivery failed');
  if (sent.kind === 'give_up') throw new UnrecoverableJobError(`webhook refused the delivery: ${sent.error}`);
  throw new WebhookDeliveryError(`webhook delivery failed: ${sent.error}`, sent.status);
}

type PostResult =
  { kind: 'delivered'; status: number } | { kind: 'retry' | 'give_up'; status: number | null; error: string };

async function post(
  deps: DeliveryDeps,
  url: string,
  secret: string | undefined,
  body: string,
  messageId: string,
  attempt: JobAttempt,
): Promise<PostResult> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'User-Agent': 'MaiHive-Webhook/1',
    'X-MaiHive-Event': DELIVERY_EVENT,
    // Receivers deduplicate on it: delivery is at least once (a crash after the POST re-sends).
    'X-MaiHive-Delivery': messageId,
    'X-MaiHive-Attempt': String(attempt.attempt),
    // Unsigned when the agent has no secret: receivers that need authenticity must set one.
    ...(secret === undefined ? {} : webhookSignatureHeaders(secret, body, deps.clock.now())),
  };
  let response: Response;
  try {
    response = await (deps.fetch ?? fetch)(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return { kind: 'retry', status: null, error: timedOut ? 'timed out' : `network error: ${e.message}` };
  }
  // The answer's body is not needed; dropping it frees the connection.
  await response.body?.cancel().catch(() => undefined);
  const verdict = classifyWebhookStatus(response.status);
  if (verdict === 'delivered') return { kind: 'delivered', status: response.status };
  return { kind: verdict, status: response.status, error: `HTTP ${response.status}` };
}

/** The Dispatcher's `process` for delivery jobs: the attempt number comes from BullMQ. */
export function deliveryJobRunner(deps: DeliveryDeps) {
  return (job: Job, tenantId: string, log: Logger = deps.logger): Promise<DeliveryOutcome> => {
    assertJobTenant(job, tenantId);
    return processDeliveryJob({ ...deps, logger: log }, job.data as DeliveryJobData, attemptOf(job));
  };
}

/**
 * An operator's retry of a dead letter (for the admin endpoint): marks it `requeued` and enqueues
 * a fresh job with a full set of attempts. False when the message is not dead-lettered.
 */
export async function retryDeadLetter(
  deps: { db: Database; queues: TenantQueues },
  tenantId: string,
  messageId: string,
): Promise<boolean> {
  const row = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
    requeueDeadLetter(db, messageId),
  );
  if (!row) return false;
  await enqueueDelivery(
    deps.queues,
    { tenantId, agentId: row.agent_id, messageId },
    { generation: row.requeue_count },
  );
  return true;
}
