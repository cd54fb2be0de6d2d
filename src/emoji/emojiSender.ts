import type { Redis } from 'ioredis';

import type { Database, TenantDb } from '../db/database';
import { getChatStream } from '../db/repositories/chatStreams';
import {
  emojiCandidates,
  type EmojiRow,
  type EmojiUse,
  getEmoji,
  recordEmojiUse,
} from '../db/repositories/emoji';
import { insertMessages } from '../db/repositories/messages';
import { hasDeliveryRoute } from '../delivery/routes';
import type { StoredAgentDeliverySettings } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import { chooseEmoji } from '../domain/emoji';
import { newId } from '../domain/ids';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../domain/isolationContext';
import type { Rng } from '../domain/random';
import { NotFoundError } from '../errors';
import { enqueueDelivery } from '../queues/deliveryJobs';
import type { TenantQueues } from '../queues/tenantQueues';

/** What an emoji message says and carries: the text chat clients show, the image as a segment. */
export interface EmojiMessage {
  /** The Unicode emoji, or `[表情:<description>]` for an image (MaiBot writes images so). */
  text: string;
  segments: unknown[];
  /** Where it came from: the tenant's pack, the Unicode fallback, or named by the caller. */
  source: 'pack' | 'fallback' | 'given';
  emoji: EmojiRow | undefined;
}

/** The path an image is read from (`GET /emoji/images/{hash}`), relative to `/api/v1`. */
export function imagePath(hash: string): string {
  return `/emoji/images/${hash}`;
}

export function emojiMessage(emoji: EmojiRow, source: EmojiMessage['source']): EmojiMessage {
  if (emoji.image_hash === null) {
    return { text: emoji.emoji ?? '🙂', segments: [], source, emoji };
  }
  const segment = {
    type: 'emoji',
    data: {
      emoji_id: emoji.emoji_id,
      pack_id: emoji.pack_id,
      image_hash: emoji.image_hash,
      format: emoji.format,
      url: `/api/v1${imagePath(emoji.image_hash)}`,
    },
  };
  return { text: `[表情:${emoji.description ?? emoji.emotion}]`, segments: [segment], source, emoji };
}

/**
 * The emoji for an emotion among the tenant's packs offered on the platform (weighted by
 * `usage_weight`, `chooseEmoji`), or the Unicode fallback. Used by `POST /emoji/send` and the
 * heartflow's `emoji` action.
 */
export async function pickEmoji(
  db: TenantDb,
  platform: string,
  emotion: string | undefined,
  rng: Rng,
): Promise<EmojiMessage> {
  const choice = chooseEmoji(await emojiCandidates(db, platform), emotion, rng);
  if (choice.kind === 'pack') return emojiMessage(choice.emoji, 'pack');
  return { text: choice.emoji, segments: [], source: 'fallback', emoji: undefined };
}

/** A use to record for an emoji message sent to a chat. */
export function useOf(
  m: EmojiMessage,
  at: { agentId: string; platform: string; chatStreamId: string },
  emotion: string | undefined,
  triggerType: EmojiUse['triggerType'],
  messageId: string,
): EmojiUse {
  return {
    emojiId: m.emoji?.emoji_id ?? null,
    packId: m.emoji?.pack_id ?? null,
    emoji: m.emoji ? m.emoji.emoji : m.text,
    emotion: emotion ?? m.emoji?.emotion ?? null,
    ...at,
    triggerType,
    messageId,
  };
}

export interface EmojiSendDeps {
  db: Database;
  redis: Redis;
  keys: { prefix: string };
  queues: TenantQueues;
  clock: Clock;
  /**
   * The chat's effective delivery settings (`deliverySettingsOf` of `effectiveConfig(ctx)`): the
   * send hands the emoji to the delivery job when they name a route, as the heartflow does.
   */
  deliveryOf(ctx: {
    tenantId: string;
    agentId: string;
    platform: string;
    chatStreamId: string;
  }): Promise<StoredAgentDeliverySettings>;
}

export interface EmojiSendRequest {
  tenantId: string;
  /** The credential's agent: an agent-bound caller reaches only its agent's streams. */
  agentId: string | undefined;
  chatStreamId: string;
  /** An emoji id of the tenant, or a literal emoji to send as it is. */
  emoji?: string | undefined;
  emotion?: string | undefined;
  triggerType: 'auto' | 'manual' | 'plugin';
}

export interface EmojiSent extends EmojiMessage {
  messageId: string;
  agentId: string;
  platform: string;
  delivery: 'queued' | 'no_route';
}

/**
 * `POST /emoji/send`: picks (or looks up) the emoji, stores it as a bot message of the stream and
 * records the use in one unit of work, then hands it to the delivery job exactly as the
 * heartflow does a reply (`hasDeliveryRoute`, `enqueueDelivery`).
 */
export async function sendEmoji(deps: EmojiSendDeps, r: EmojiSendRequest, rng: Rng): Promise<EmojiSent> {
  const ctx = createIsolationContext({ tenantId: r.tenantId, agentId: r.agentId });
  const now = deps.clock.now();
  const messageId = newId('msg', now);
  const sent = await deps.db.withTenant(ctx, async (db) => {
    const stream = await getChatStream(db, r.chatStreamId);
    if (!stream) {
      throw new NotFoundError('CHAT_STREAM_NOT_FOUND', 'no such chat stream', {
        chat_stream_id: r.chatStreamId,
      });
    }
    const message = await resolveEmoji(db, stream.platform, r, rng);
    const at = { agentId: stream.agent_id, platform: stream.platform, chatStreamId: stream.chat_stream_id };
    await insertMessages(db, [
      {
        messageId,
        ...at,
        direction: 'out',
        content: message.text,
        segments: message.segments,
        status: 'sent',
        createdAt: new Date(now),
      },
    ]);
    await recordEmojiUse(db, useOf(message, at, r.emotion, r.triggerType, messageId));
    return { ...message, ...at };
  });
  const place = {
    tenantId: r.tenantId,
    agentId: sent.agentId,
    platform: sent.platform,
    chatStreamId: r.chatStreamId,
  };
  const routed = await hasDeliveryRoute(deps.redis, deps.keys.prefix, await deps.deliveryOf(place), place);
  if (routed) await enqueueDelivery(deps.queues, { tenantId: r.tenantId, agentId: sent.agentId, messageId });
  return { ...sent, messageId, delivery: routed ? 'queued' : 'no_route' };
}

async function resolveEmoji(
  db: TenantDb,
  platform: string,
  r: EmojiSendRequest,
  rng: Rng,
): Promise<EmojiMessage> {
  if (r.emoji === undefined) return pickEmoji(db, platform, r.emotion, rng);
  if (!IDENTIFIER_PATTERN.test(r.emoji))
    return { text: r.emoji, segments: [], source: 'given', emoji: undefined };
  const stored = await getEmoji(db, r.emoji);
  if (!stored) throw new NotFoundError('NOT_FOUND', 'no such emoji', { emoji: r.emoji });
  return emojiMessage(stored, 'given');
}
