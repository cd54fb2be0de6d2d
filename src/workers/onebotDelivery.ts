import { UnrecoverableError } from 'bullmq';

import { ONEBOT_PLATFORM } from '../adapters/onebot';
import type { Database, TenantDb } from '../db/database';
import { getAgent } from '../db/repositories/agents';
import { getChatStream } from '../db/repositories/chatStreams';
import {
  type DeliveryRecord,
  getDelivery,
  markDeadLetter,
  markDelivered,
} from '../db/repositories/deliveries';
import { emojiImage } from '../db/repositories/emoji';
import { getMessage, type MessageRow } from '../db/repositories/messages';
import { actionVerdict, type OneBotAction, type ReplyTarget, sendAction } from '../delivery/onebotActions';
import type { OneBotRelay } from '../delivery/onebotRelay';
import { storedAgentConfig } from '../domain/agentConfig';
import { createIsolationContext } from '../domain/isolationContext';
import { MaiHiveError } from '../errors';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { DeliveryJobData, JobAttempt } from './jobs';

/**
 * Delivery of a bot reply to QQ through OneBot v11: on the reverse WebSocket of the bot account
 * the chat's messages arrived on (`onebot_ws`), else through the agent's OneBot HTTP API
 * (`delivery.onebot_http`). Same durable job, retries and dead letters as the webhook
 * (`deliveryProcessor.ts`): a failed delivery is retried with the job's backoff and never runs the
 * LLM again, since the reply is already stored.
 */

export interface OneBotDeliveryDeps {
  db: Database;
  logger: Logger;
  /** Reaches the API process holding a bot's socket; without it, only `onebot_http` is used. */
  onebot?: OneBotRelay | undefined;
  /** Opens a sealed `onebot_http.access_token`. */
  secretBox?: SecretBox | undefined;
  fetch?: typeof fetch | undefined;
  /** Per HTTP API attempt, ms. Default 10000. */
  timeoutMs?: number | undefined;
}

export type OneBotRoute =
  | { kind: 'onebot_ws'; accountId: string }
  | { kind: 'onebot_http'; baseUrl: string; accessToken: string | undefined };

export type OneBotDeliveryOutcome =
  | { status: 'delivered'; route: OneBotRoute['kind']; platformMessageId: string | null; attempt: number }
  | { status: 'skipped'; reason: 'already_delivered' | 'no_target' };

/** A OneBot delivery attempt that failed in a way a later attempt may not (socket away, timeout). */
export class OneBotDeliveryError extends MaiHiveError {
  readonly code = 'ONEBOT_DELIVERY_FAILED';
  readonly status = 502;
}

interface Loaded {
  message: MessageRow;
  target: ReplyTarget | undefined;
  /** The emoji image the reply is (`emoji/emojiSender.ts`), base64. */
  image: { base64: string } | undefined;
  delivered: boolean;
  http: { base_url: string; access_token?: string; access_token_encrypted?: string } | undefined;
}

async function load(db: TenantDb, data: DeliveryJobData): Promise<Loaded | undefined> {
  const message = await getMessage(db, data.messageId);
  if (!message || message.agent_id !== data.agentId || message.direction !== 'out') return undefined;
  if (message.platform !== ONEBOT_PLATFORM) return undefined;
  const delivered = (await getDelivery(db, data.messageId))?.status === 'delivered';
  const http = storedAgentConfig((await getAgent(db, data.agentId))?.config).delivery?.onebot_http;
  const stream = await getChatStream(db, message.chat_stream_id);
  const quoted = message.reply_to ? await getMessage(db, message.reply_to) : undefined;
  const target: ReplyTarget | undefined = stream && {
    chatType: stream.chat_type,
    groupId: stream.group_id,
    userId: stream.user_id,
    quotedPlatformId: quoted?.client_message_id ?? null,
  };
  return { message, target, image: await emojiImageOf(db, message), delivered, http };
}

/** The image of an emoji reply, when the reply is one (an `emoji` segment naming a stored image). */
async function emojiImageOf(db: TenantDb, message: MessageRow): Promise<{ base64: string } | undefined> {
  const segment = (message.segments as { type?: unknown; data?: { image_hash?: unknown } }[]).find(
    (s) => s?.type === 'emoji' && typeof s.data?.image_hash === 'string',
  );
  if (!segment) return undefined;
  const image = await emojiImage(db, segment.data!.image_hash as string);
  return image && { base64: image.data.toString('base64') };
}

type Sent =
  | { kind: 'delivered'; platformMessageId: string | null }
  | { kind: 'retry' | 'give_up'; status: number | null; error: string };

async function sendOnSocket(
  relay: OneBotRelay,
  tenantId: string,
  accountId: string,
  action: OneBotAction,
): Promise<Sent> {
  const result = await relay.send(tenantId, accountId, action);
  if (!result.ok) return { kind: 'retry', status: null, error: `socket of ${accountId}: ${result.reason}` };
  return verdictOf(result.response, null);
}

function verdictOf(response: unknown, status: number | null): Sent {
  const v = actionVerdict(response);
  if (v.ok) return { kind: 'delivered', platformMessageId: v.platformMessageId };
  return { kind: v.retry ? 'retry' : 'give_up', status, error: v.message };
}

/** `POST {base_url}/{action}` with the params as JSON (OneBot v11 communication/http.md). */
async function sendOverHttp(
  deps: OneBotDeliveryDeps,
  baseUrl: string,
  accessToken: string | undefined,
  action: OneBotAction,
): Promise<Sent> {
  const url = `${baseUrl.replace(/\/+$/, '')}/${action.action}`;
  let response: Response;
  try {
    response = await (deps.fetch ?? fetch)(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json; charset=utf-8',
        ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}),
      },
      body: JSON.stringify(action.params),
      redirect: 'manual',
      signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return { kind: 'retry', status: null, error: timedOut ? 'timed out' : `network error: ${e.message}` };
  }
  const s = response.status;
  if (s < 200 || s >= 300) {
    await response.body?.cancel().catch(() => undefined);
    const retry = s === 408 || s === 429 || s >= 500;
    return { kind: retry ? 'retry' : 'give_up', status: s, error: `HTTP ${s}` };
  }
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    return { kind: 'retry', status: s, error: 'the answer is not JSON' };
  }
  return verdictOf(body, s);
}

/**
 * One attempt of a OneBot delivery; undefined when the reply has no OneBot route (not a QQ reply,
 * its chat never came over the socket and the agent has no `onebot_http`): the webhook path
 * decides then. Throws like the webhook path: `OneBotDeliveryError` to retry, `UnrecoverableError`
 * to give up, after writing the dead letter on the last attempt.
 */
export async function processOneBotDelivery(
  deps: OneBotDeliveryDeps,
  data: DeliveryJobData,
  attempt: JobAttempt,
): Promise<OneBotDeliveryOutcome | undefined> {
  const ctx = createIsolationContext({ tenantId: data.tenantId, agentId: data.agentId });
  const loaded = await deps.db.withTenant(ctx, (db) => load(db, data));
  if (!loaded) return undefined;
  const { message } = loaded;
  const account =
    deps.onebot && (await deps.onebot.routeOf(data.tenantId, data.agentId, message.chat_stream_id));
  let route: OneBotRoute;
  if (account) route = { kind: 'onebot_ws', accountId: account };
  else if (loaded.http) {
    const sealed = loaded.http.access_token_encrypted;
    let token = loaded.http.access_token;
    if (sealed !== undefined) {
      if (!deps.secretBox) throw new UnrecoverableError('no server key to open the OneBot access token');
      token = deps.secretBox.decrypt(sealed);
    }
    route = { kind: 'onebot_http', baseUrl: loaded.http.base_url, accessToken: token };
  } else return undefined;

  const log = deps.logger.child({
    tenant_id: data.tenantId,
    agent_id: data.agentId,
    message_id: data.messageId,
    attempt: attempt.attempt,
    route: route.kind,
  });
  if (loaded.delivered) return { status: 'skipped', reason: 'already_delivered' };
  const action = loaded.target && sendAction(loaded.target, message.content, loaded.image);
  const record: Omit<DeliveryRecord, 'httpStatus' | 'error'> = {
    messageId: message.message_id,
    agentId: message.agent_id,
    platform: message.platform,
    chatStreamId: message.chat_stream_id,
    webhookUrl: route.kind === 'onebot_ws' ? `onebot-ws://${route.accountId}` : route.baseUrl,
    attempts: attempt.attempt,
  };
  if (!action) {
    const error = 'the chat stream names no QQ group or user to send to';
    await deps.db.withTenant(ctx, (db) => markDeadLetter(db, { ...record, httpStatus: null, error }));
    throw new UnrecoverableError(error);
  }
  const sent =
    route.kind === 'onebot_ws'
      ? await sendOnSocket(deps.onebot!, data.tenantId, route.accountId, action)
      : await sendOverHttp(deps, route.baseUrl, route.accessToken, action);
  if (sent.kind === 'delivered') {
    await deps.db.withTenant(ctx, (db) =>
      markDelivered(db, {
        ...record,
        httpStatus: null,
        error: null,
        platformMessageId: sent.platformMessageId,
      }),
    );
    log.info({ platform_message_id: sent.platformMessageId }, 'reply delivered over onebot');
    return {
      status: 'delivered',
      route: route.kind,
      platformMessageId: sent.platformMessageId,
      attempt: attempt.attempt,
    };
  }
  const final = sent.kind === 'give_up' || attempt.attempt >= attempt.maxAttempts;
  if (final) {
    await deps.db.withTenant(ctx, (db) =>
      markDeadLetter(db, { ...record, httpStatus: sent.status, error: sent.error.slice(0, 500) }),
    );
  }
  log.warn({ err: sent.error, http_status: sent.status, final }, 'onebot delivery failed');
  if (sent.kind === 'give_up') throw new UnrecoverableError(`onebot refused the reply: ${sent.error}`);
  throw new OneBotDeliveryError(`onebot delivery failed: ${sent.error}`);
}
