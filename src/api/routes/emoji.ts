import { z } from 'zod';

import { SENDERS, TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import {
  createPack,
  deletePack,
  emojiImage,
  type EmojiRow,
  emojiStatistics,
  getPack,
  insertEmojis,
  listPacks,
  packEmojis,
} from '../../db/repositories/emoji';
import { deliverySettingsOf } from '../../domain/configuration/delivery';
import { type ImageFormat, MEDIA_TYPES } from '../../domain/emoji';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { mulberry32 } from '../../domain/random';
import { StatsPeriod } from '../../domain/statsPeriod';
import { imagePath, sendEmoji } from '../../emoji/emojiSender';
import { decodeUpload, deduplicate, pendingRow } from '../../emoji/emojiUpload';
import { ConflictError, NotFoundError } from '../../errors';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Emoji';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Label = z.string().trim().min(1).max(64);

const EmojiEntry = z
  .strictObject({
    /** A Unicode emoji (or short text emoticon). */
    emoji: z.string().min(1).max(32).optional(),
    /** PNG, JPEG, GIF or WebP, at most 512 KiB decoded (type checked from the bytes). */
    image_base64: z.string().min(1).max(800_000).optional(),
    description: z.string().max(500).optional(),
    /** Default: the first tag, else `neutral` (the upstream example gives tags only). */
    emotion: Label.optional(),
    tags: z.array(Label).max(20).default([]),
    usage_weight: z.number().positive().max(1000).default(1),
  })
  .refine((e) => (e.emoji === undefined) !== (e.image_base64 === undefined), {
    message: 'give exactly one of emoji and image_base64',
    path: ['emoji'],
  });

const CreateBody = z.strictObject({
  pack_id: Identifier,
  name: z.string().trim().min(1).max(128),
  description: z.string().max(1000).optional(),
  /** Offer the pack on this platform only; default every platform. */
  platform: Identifier.optional(),
  category: Label.optional(),
  emojis: z.array(EmojiEntry).min(1).max(200),
});
const PackParams = z.object({ pack_id: Identifier });
const ListQuery = z.strictObject({
  ...pageQuery,
  platform: Identifier.optional(),
  category: Label.optional(),
});
const SendBody = z
  .strictObject({
    chat_stream_id: Identifier,
    /** An emoji id of the tenant's packs, or a literal emoji. */
    emoji: z.string().min(1).max(128).optional(),
    emotion: Label.optional(),
    trigger_type: z.enum(['auto', 'manual']).default('manual'),
    /** Free-form context of the caller (not stored). */
    context: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => b.emoji === undefined || b.emotion === undefined, {
    message: 'give emoji or emotion, not both',
    path: ['emotion'],
  });
const StatsQuery = z.strictObject({ period: StatsPeriod.prefault('7d') });
const ImageParams = z.object({ image_hash: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex') });

const EmojiSchema = z.object({
  emoji_id: z.string(),
  pack_id: z.string(),
  emoji: z.string().nullable(),
  image_hash: z.string().nullable(),
  image_url: z.string().nullable(),
  format: z.string().nullable(),
  size_bytes: z.number().nullable(),
  description: z.string().nullable(),
  emotion: z.string(),
  tags: z.array(z.string()),
  usage_weight: z.number(),
  usage_count: z.number(),
  deduplicated: z.boolean().optional(),
});
const PackSchema = z.object({
  pack_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  platform: z.string().nullable(),
  category: z.string().nullable(),
  emoji_count: z.number(),
  created_at: z.string(),
});
const PackWithEmojis = PackSchema.extend({ emojis: z.array(EmojiSchema) });

function emojiBody(e: EmojiRow) {
  return {
    emoji_id: e.emoji_id,
    pack_id: e.pack_id,
    emoji: e.emoji,
    image_hash: e.image_hash,
    image_url: e.image_hash === null ? null : `/api/v1${imagePath(e.image_hash)}`,
    format: e.format,
    size_bytes: e.size_bytes === null ? null : Number(e.size_bytes),
    description: e.description,
    emotion: e.emotion,
    tags: e.tags,
    usage_weight: e.usage_weight,
    usage_count: e.usage_count,
  };
}

function packBody(p: {
  pack_id: string;
  name: string;
  description: string | null;
  platform: string | null;
  category: string | null;
  emoji_count: number;
  created_at: Date;
}) {
  return {
    pack_id: p.pack_id,
    name: p.name,
    description: p.description,
    platform: p.platform,
    category: p.category,
    emoji_count: p.emoji_count,
    created_at: p.created_at.toISOString(),
  };
}

/** API.md § Emoji: packs of Unicode emoji and images, sending by emotion, usage statistics. */
export function emojiRoutes({ router, registry, deps }: RouteContext): void {
  route(router, registry, {
    method: 'post',
    path: '/emoji/packs',
    operationId: 'createEmojiPack',
    headers: ['X-Tenant-ID'],
    errors: [409],
    summary: 'Create an emoji pack; images are stored once per tenant (deduplicated by content hash)',
    tag: TAG,
    auth: TENANT_WRITERS,
    status: 201,
    body: CreateBody,
    response: PackWithEmojis.extend({ deduplicated: z.number() }),
    handler: async ({ body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const entries = body.emojis.map((e) => ({ ...e, emotion: e.emotion ?? e.tags[0] ?? 'neutral' }));
      const decoded = decodeUpload(entries, deps.clock.now());
      const result = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        const pack = {
          packId: body.pack_id,
          name: body.name,
          description: body.description ?? null,
          platform: body.platform ?? null,
          category: body.category ?? null,
        };
        if (!(await createPack(db, pack))) {
          throw new ConflictError(`emoji pack ${body.pack_id} already exists`, {
            details: { pack_id: body.pack_id },
          });
        }
        const outcomes = await deduplicate(db, body.pack_id, decoded);
        const fresh = outcomes.flatMap((o) => (o.kind === 'new' ? [o.emoji] : []));
        await insertEmojis(db, body.pack_id, fresh);
        return { pack: (await getPack(db, body.pack_id))!, outcomes };
      });
      const emojis = result.outcomes.map((o) =>
        o.kind === 'new'
          ? { ...emojiBody(pendingRow(body.pack_id, o.emoji)), deduplicated: false }
          : { ...emojiBody(o.existing), deduplicated: true },
      );
      const deduplicated = emojis.filter((e) => e.deduplicated).length;
      return { status: 201, data: { ...packBody(result.pack), emojis, deduplicated } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/emoji/packs',
    operationId: 'listEmojiPacks',
    headers: ['X-Tenant-ID'],
    summary: "The tenant's emoji packs (a platform filter includes packs for every platform)",
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: ListQuery,
    response: z.object({ packs: z.array(PackSchema), pagination: PaginationSchema }),
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const { rows, total } = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        listPacks(db, { platform: query.platform, category: query.category, ...pageWindow(query) }),
      );
      return { data: { packs: rows.map(packBody), pagination: pagination(query, total) } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/emoji/packs/:pack_id',
    operationId: 'getEmojiPack',
    headers: ['X-Tenant-ID'],
    summary: 'One emoji pack with its emoji (images as URLs, not inline)',
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: PackParams,
    response: PackWithEmojis,
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const found = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        const pack = await getPack(db, params.pack_id);
        return pack ? { pack, emojis: await packEmojis(db, params.pack_id) } : undefined;
      });
      if (!found) throw new NotFoundError('NOT_FOUND', 'no such emoji pack', { pack_id: params.pack_id });
      return { data: { ...packBody(found.pack), emojis: found.emojis.map(emojiBody) } };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/emoji/packs/:pack_id',
    operationId: 'deleteEmojiPack',
    headers: ['X-Tenant-ID'],
    summary: 'Delete an emoji pack, its emoji and their images (usage statistics stay)',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: PackParams,
    response: z.object({ pack_id: z.string(), deleted: z.literal(true) }),
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const deleted = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        deletePack(db, params.pack_id),
      );
      if (!deleted) throw new NotFoundError('NOT_FOUND', 'no such emoji pack', { pack_id: params.pack_id });
      return { data: { pack_id: params.pack_id, deleted: true as const } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/emoji/images/:image_hash',
    operationId: 'getEmojiImage',
    headers: ['X-Tenant-ID'],
    summary: "The bytes of one of the tenant's emoji images (Content-Type from the sniffed format)",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: ImageParams,
    produces: 'image/*',
    handler: async ({ params, principal, req, res }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const image = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        emojiImage(db, params.image_hash),
      );
      if (!image) throw new NotFoundError('NOT_FOUND', 'no such image', { image_hash: params.image_hash });
      res.status(200);
      res.setHeader(
        'Content-Type',
        MEDIA_TYPES[(image.format ?? 'png') as ImageFormat] ?? 'application/octet-stream',
      );
      res.setHeader('Content-Length', String(image.data.length));
      // Content-addressed: the bytes behind a hash never change.
      res.setHeader('Cache-Control', 'private, max-age=31536000, immutable');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.end(image.data);
      return { raw: true };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/emoji/send',
    operationId: 'sendEmoji',
    headers: ['X-Tenant-ID'],
    summary: 'Send an emoji to a chat: the one named, or one picked by emotion; delivered like a reply',
    tag: TAG,
    auth: SENDERS,
    body: SendBody,
    response: z.object({
      message_id: z.string(),
      chat_stream_id: z.string(),
      agent_id: z.string(),
      content: z.string(),
      emoji: EmojiSchema.nullable(),
      source: z.enum(['pack', 'fallback', 'given']),
      delivery: z.enum(['queued', 'no_route']),
    }),
    handler: async ({ body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const sent = await sendEmoji(
        {
          ...deps,
          deliveryOf: async (ctx) =>
            deliverySettingsOf((await deps.configReader.effectiveConfig(ctx)).delivery),
        },
        {
          tenantId,
          agentId: principal.agentId,
          chatStreamId: body.chat_stream_id,
          emoji: body.emoji,
          // The upstream example names the emotion in `context`.
          emotion:
            body.emotion ?? (typeof body.context?.emotion === 'string' ? body.context.emotion : undefined),
          triggerType: body.trigger_type,
        },
        mulberry32((Math.random() * 2 ** 32) >>> 0),
      );
      return {
        data: {
          message_id: sent.messageId,
          chat_stream_id: body.chat_stream_id,
          agent_id: sent.agentId,
          content: sent.text,
          emoji: sent.emoji ? emojiBody(sent.emoji) : null,
          source: sent.source,
          delivery: sent.delivery,
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/emoji/statistics',
    operationId: 'getEmojiStatistics',
    headers: ['X-Tenant-ID'],
    summary: 'Emoji sent in the period (by emotion, trigger, most used) and what the packs store',
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: StatsQuery,
    response: z.object({
      period_ms: z.number(),
      total_uses: z.number(),
      by_emotion: z.record(z.string(), z.number()),
      by_trigger: z.record(z.string(), z.number()),
      top_emojis: z.array(
        z.object({
          emoji_id: z.string().nullable(),
          emoji: z.string().nullable(),
          pack_id: z.string().nullable(),
          uses: z.number(),
        }),
      ),
      packs: z.number(),
      emojis: z.number(),
      images: z.number(),
      storage_bytes: z.number(),
    }),
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const since = new Date(deps.clock.now() - query.period);
      const s = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        emojiStatistics(db, since),
      );
      return {
        data: {
          period_ms: query.period,
          total_uses: s.totalUses,
          by_emotion: s.byEmotion,
          by_trigger: s.byTrigger,
          top_emojis: s.top,
          packs: s.packs,
          emojis: s.emojis,
          images: s.images,
          storage_bytes: s.storageBytes,
        },
      };
    },
  });
}
