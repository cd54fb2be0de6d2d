import { UnrecoverableError } from 'bullmq';

import { MAIM_SEND_ACTION, maimReplyMessage, type MaimReplyTarget } from '../adapters/maimFrames';
import { ONEBOT_PLATFORM } from '../adapters/onebot';
import type { ConfigContext } from '../configuration/effectiveConfig';
import type { Database, TenantDb } from '../db/database';
import { listAgentAccounts } from '../db/repositories/agentAccounts';
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
import type { SocketAction, SocketId, SocketRelay } from '../delivery/socketRelay';
import type { StoredAgentDeliverySettings } from '../domain/agentConfig';
import { deliverySettingsOf } from '../domain/configuration/delivery';
import type { EffectiveConfig } from '../domain/configuration/precedence';
import { createIsolationContext } from '../domain/isolationContext';
import { MaiHiveError } from '../errors';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { DeliveryJobData, JobAttempt } from './jobs';

/**
 * Delivery of a bot reply on the chat socket the chat's messages arrived on: a OneBot v11 action on
 * the bot account's reverse WebSocket (`onebot_ws`), or a maim_message `MessageBase` on the MaiBot
 * adapter's WebSocket (`maim_ws`); else, for QQ, through the OneBot HTTP API of the chat's
 * effective `delivery.onebot_http` (set for the tenant, the agent, the platform or the chat).
 * Same durable job, retries and dead letters as the webhook (`deliveryProcessor.ts`): a failed
 * delivery is retried with the job's backoff and never runs the LLM again, since the reply is
 * already stored.
 */

export interface OneBotDeliveryDeps {
  db: Database;
  logger: Logger;
  /** The chat's effective configuration (the pool's `EffectiveConfigReader`): its `delivery`. */
  config: { effectiveConfig(ctx: ConfigContext): Promise<EffectiveConfig> };
  /** Reaches the API process holding a chat socket; without it, only `onebot_http` is used. */
  sockets?: SocketRelay | undefined;
  /** Opens a sealed `onebot_http.access_token`. */
  secretBox?: SecretBox | undefined;
  fetch?: typeof fetch | undefined;
  /** Per HTTP API attempt, ms. Default 10000. */
  timeoutMs?: number | undefined;
}

export type OneBotRoute =
  | { kind: 'onebot_ws'; accountId: string }
  | { kind: 'maim_ws'; platform: string }
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
  target: (ReplyTarget & Omit<MaimReplyTarget, 'quotedPlatformId'>) | undefined;
  /** The emoji image the reply is (`emoji/emojiSender.ts`), base64. */
  image: { base64: string } | undefined;
  delivered: boolean;
}

/** Where a stored reply is pushed: its chat's effective `delivery` settings (any scope). */
export async function deliverySettingsOfReply(
  deps: Pick<OneBotDeliveryDeps, 'config'>,
  tenantId: string,
  message: Pick<MessageRow, 'agent_id' | 'platform' | 'chat_stream_id'>,
): Promise<StoredAgentDeliverySettings> {
  const effective = await deps.config.effectiveConfig({
    tenantId,
    agentId: message.agent_id,
    platform: message.platform,
    chatStreamId: message.chat_stream_id,
  });
  return deliverySettingsOf(effective.delivery);
}

async function load(db: TenantDb, data: DeliveryJobData): Promise<Loaded | undefined> {
  const message = await getMessage(db, data.messageId);
  if (!message || message.agent_id !== data.agentId || message.direction !== 'out') return undefined;
  const delivered = (await getDelivery(db, data.messageId))?.status === 'delivered';
  const stream = await getChatStream(db, message.chat_stream_id);
  const quoted = message.reply_to ? await getMessage(db, message.reply_to) : undefined;
  const bot = (await listAgentAccounts(db, data.agentId)).find((a) => a.platform === message.platform);
  const target = stream && {
    platform: message.platform,
    chatType: stream.chat_type,
    groupId: stream.group_id,
    groupName: stream.group_name,
    userId: stream.user_id,
    botAccountId: bot?.account_id ?? null,
    quotedPlatformId: quoted?.client_message_id ?? null,
  };
  return { message, target, image: await emojiImageOf(db, message), delivered };
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

/**
 * The request on the socket; a OneBot answer says whether QQ took the reply, a maim_message
 * adapter's acknowledgement (or, in plain mode, the write) that the adapter has it.
 */
async function sendOnSocket(
  relay: SocketRelay,
  tenantId: string,
  socket: SocketId,
  action: SocketAction,
): Promise<Sent> {
  const result = await relay.send(tenantId, socket, action);
  const name = socket.kind === 'onebot' ? socket.accountId : `${socket.platform} adapter`;
  if (!result.ok) return { kind: 'retry', status: null, error: `socket of ${name}: ${result.reason}` };
  if (socket.kind === 'maim') return { kind: 'delivered', platformMessageId: null };
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

/** Where the delivery went, as the deliveries table keeps it. */
function routeUrl(route: OneBotRoute): string {
  if (route.kind === 'onebot_ws') return `onebot-ws://${route.accountId}`;
  if (route.kind === 'maim_ws') return `maim-ws://${route.platform}`;
  return route.baseUrl;
}

/** The reply as the route's request: a OneBot action, or a maim_message `MessageBase`. */
function requestFor(
  route: OneBotRoute,
  target: NonNullable<Loaded['target']>,
  message: MessageRow,
  image: Loaded['image'],
): SocketAction | undefined {
  // An emoji image goes to OneBot as an `image` segment; a maim_message reply carries its text.
  if (route.kind !== 'maim_ws') return sendAction(target, message.content, image);
  const reply = maimReplyMessage(target, {
    messageId: message.message_id,
    text: message.content,
    time: message.created_at.getTime() / 1000,
  });
  return reply && { action: MAIM_SEND_ACTION, params: { message: reply } };
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
  const socket =
    deps.sockets && (await deps.sockets.routeOf(data.tenantId, data.agentId, message.chat_stream_id));
  let route: OneBotRoute;
  let http: StoredAgentDeliverySettings['onebot_http'];
  if (socket?.kind === 'onebot') route = { kind: 'onebot_ws', accountId: socket.accountId };
  else if (socket?.kind === 'maim') route = { kind: 'maim_ws', platform: socket.platform };
  else if (
    message.platform === ONEBOT_PLATFORM &&
    (http = (await deliverySettingsOfReply(deps, data.tenantId, message)).onebot_http)
  ) {
    const sealed = http.access_token_encrypted;
    let token = http.access_token;
    if (sealed !== undefined) {
      if (!deps.secretBox) throw new UnrecoverableError('no server key to open the OneBot access token');
      token = deps.secretBox.decrypt(sealed);
    }
    route = { kind: 'onebot_http', baseUrl: http.base_url, accessToken: token };
  } else return undefined;

  const log = deps.logger.child({
    tenant_id: data.tenantId,
    agent_id: data.agentId,
    message_id: data.messageId,
    attempt: attempt.attempt,
    route: route.kind,
  });
  if (loaded.delivered) return { status: 'skipped', reason: 'already_delivered' };
  const record: Omit<DeliveryRecord, 'httpStatus' | 'error'> = {
    messageId: message.message_id,
    agentId: message.agent_id,
    platform: message.platform,
    chatStreamId: message.chat_stream_id,
    webhookUrl: routeUrl(route),
    attempts: attempt.attempt,
  };
  const request = loaded.target && requestFor(route, loaded.target, message, loaded.image);
  if (!request) {
    const error = `the chat stream names no ${message.platform} group or user to send to`;
    await deps.db.withTenant(ctx, (db) => markDeadLetter(db, { ...record, httpStatus: null, error }));
    throw new UnrecoverableError(error);
  }
  const sent =
    route.kind === 'onebot_ws'
      ? await sendOnSocket(
          deps.sockets!,
          data.tenantId,
          { kind: 'onebot', accountId: route.accountId },
          request,
        )
      : route.kind === 'maim_ws'
        ? await sendOnSocket(
            deps.sockets!,
            data.tenantId,
            { kind: 'maim', agentId: data.agentId, platform: route.platform },
            request,
          )
        : await sendOverHttp(deps, route.baseUrl, route.accessToken, request as OneBotAction);
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
