import type { TenantDb } from '../database';

export interface EmojiPackRow {
  pack_id: string;
  name: string;
  description: string | null;
  platform: string | null;
  category: string | null;
  created_at: Date;
  emoji_count: number;
}

/** An emoji without its image bytes (those are read on their own, `emojiImage`). */
export interface EmojiRow {
  emoji_id: string;
  pack_id: string;
  emoji: string | null;
  image_hash: string | null;
  format: string | null;
  size_bytes: number | null;
  description: string | null;
  emotion: string;
  tags: string[];
  usage_weight: number;
  usage_count: number;
  last_used_at: Date | null;
}

export interface NewEmoji {
  emojiId: string;
  emoji: string | null;
  image: { hash: string; format: string; data: Buffer } | null;
  description: string | null;
  emotion: string;
  tags: string[];
  usageWeight: number;
}

/** The columns of an `EmojiRow`, of the table aliased `e`. */
const EMOJI_COLUMNS = `e.emoji_id, e.pack_id, e.emoji, e.image_hash, e.format, octet_length(e.image_data) AS size_bytes,
  e.description, e.emotion, e.tags, e.usage_weight, e.usage_count, e.last_used_at`;

export async function createPack(
  db: TenantDb,
  p: {
    packId: string;
    name: string;
    description: string | null;
    platform: string | null;
    category: string | null;
  },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO emoji_packs (tenant_id, pack_id, name, description, platform, category)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [db.ctx.tenantId, p.packId, p.name, p.description, p.platform, p.category],
  );
  return rowCount === 1;
}

/** Emoji of the tenant already holding these image hashes (an image is stored once per tenant). */
export async function emojiByImageHash(
  db: TenantDb,
  hashes: readonly string[],
): Promise<Map<string, EmojiRow>> {
  if (hashes.length === 0) return new Map();
  const { rows } = await db.query<EmojiRow>(
    `SELECT ${EMOJI_COLUMNS} FROM emojis e WHERE tenant_id = $1 AND image_hash = ANY($2::text[])`,
    [db.ctx.tenantId, hashes],
  );
  return new Map(rows.map((r) => [r.image_hash!, r]));
}

/** Inserts a pack's emoji in one statement. */
export async function insertEmojis(db: TenantDb, packId: string, emojis: readonly NewEmoji[]): Promise<void> {
  if (emojis.length === 0) return;
  await db.query(
    `INSERT INTO emojis (tenant_id, pack_id, emoji_id, emoji, image_hash, format, image_data, description,
                         emotion, tags, usage_weight)
     SELECT $1, $2, e.id, e.emoji, e.hash, e.format, e.data, e.description, e.emotion,
            ARRAY(SELECT jsonb_array_elements_text(e.tags)), e.weight
     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::text[], $9::text[],
                 $10::jsonb[], $11::real[])
       AS e(id, emoji, hash, format, data, description, emotion, tags, weight)`,
    [
      db.ctx.tenantId,
      packId,
      emojis.map((e) => e.emojiId),
      emojis.map((e) => e.emoji),
      emojis.map((e) => e.image?.hash ?? null),
      emojis.map((e) => e.image?.format ?? null),
      emojis.map((e) => e.image?.data ?? null),
      emojis.map((e) => e.description),
      emojis.map((e) => e.emotion),
      emojis.map((e) => JSON.stringify(e.tags)),
      emojis.map((e) => e.usageWeight),
    ],
  );
}

const PACK_COLUMNS = `p.pack_id, p.name, p.description, p.platform, p.category, p.created_at,
  (SELECT count(*)::int FROM emojis e WHERE e.tenant_id = p.tenant_id AND e.pack_id = p.pack_id) AS emoji_count`;

export async function getPack(db: TenantDb, packId: string): Promise<EmojiPackRow | undefined> {
  const { rows } = await db.query<EmojiPackRow>(
    `SELECT ${PACK_COLUMNS} FROM emoji_packs p WHERE p.tenant_id = $1 AND p.pack_id = $2`,
    [db.ctx.tenantId, packId],
  );
  return rows[0];
}

export interface PackFilter {
  platform?: string | undefined;
  category?: string | undefined;
  limit: number;
  offset: number;
}

/** A page of packs (a pack without a platform is offered on every platform) and the total. */
export async function listPacks(
  db: TenantDb,
  f: PackFilter,
): Promise<{ rows: EmojiPackRow[]; total: number }> {
  const where = `p.tenant_id = $1 AND ($2::text IS NULL OR p.platform IS NULL OR p.platform = $2)
                 AND ($3::text IS NULL OR p.category = $3)`;
  const args = [db.ctx.tenantId, f.platform ?? null, f.category ?? null];
  const { rows } = await db.query<EmojiPackRow & { total: string }>(
    `SELECT ${PACK_COLUMNS}, count(*) OVER () AS total FROM emoji_packs p WHERE ${where}
     ORDER BY p.created_at, p.pack_id LIMIT $4 OFFSET $5`,
    [...args, f.limit, f.offset],
  );
  return { rows, total: Number(rows[0]?.total ?? 0) };
}

export async function packEmojis(db: TenantDb, packId: string): Promise<EmojiRow[]> {
  const { rows } = await db.query<EmojiRow>(
    `SELECT ${EMOJI_COLUMNS} FROM emojis e WHERE tenant_id = $1 AND pack_id = $2 ORDER BY created_at, emoji_id`,
    [db.ctx.tenantId, packId],
  );
  return rows;
}

export async function deletePack(db: TenantDb, packId: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM emoji_packs WHERE tenant_id = $1 AND pack_id = $2`, [
    db.ctx.tenantId,
    packId,
  ]);
  return rowCount === 1;
}

/** Most emoji selection looks at (the heaviest first when a tenant has more). */
const CANDIDATE_LIMIT = 5000;

/** The emoji offered on a platform: those of packs for that platform or for every platform. */
export async function emojiCandidates(db: TenantDb, platform: string): Promise<EmojiRow[]> {
  const { rows } = await db.query<EmojiRow>(
    `SELECT ${EMOJI_COLUMNS}
     FROM emojis e JOIN emoji_packs p ON p.tenant_id = e.tenant_id AND p.pack_id = e.pack_id
     WHERE e.tenant_id = $1 AND (p.platform IS NULL OR p.platform = $2)
     ORDER BY e.usage_weight DESC, e.emoji_id LIMIT ${CANDIDATE_LIMIT}`,
    [db.ctx.tenantId, platform],
  );
  return rows;
}

export async function getEmoji(db: TenantDb, emojiId: string): Promise<EmojiRow | undefined> {
  const { rows } = await db.query<EmojiRow>(
    `SELECT ${EMOJI_COLUMNS} FROM emojis e WHERE tenant_id = $1 AND emoji_id = $2`,
    [db.ctx.tenantId, emojiId],
  );
  return rows[0];
}

/** The stored bytes of one image of the tenant. */
export async function emojiImage(
  db: TenantDb,
  imageHash: string,
): Promise<{ format: string | null; data: Buffer } | undefined> {
  const { rows } = await db.query<{ format: string | null; data: Buffer }>(
    `SELECT format, image_data AS data FROM emojis
     WHERE tenant_id = $1 AND image_hash = $2 AND image_data IS NOT NULL`,
    [db.ctx.tenantId, imageHash],
  );
  return rows[0];
}

export interface EmojiUse {
  emojiId: string | null;
  packId: string | null;
  emoji: string | null;
  emotion: string | null;
  agentId: string;
  platform: string;
  chatStreamId: string;
  triggerType: 'auto' | 'manual' | 'heartflow' | 'plugin';
  messageId: string | null;
}

/** Records one use: a usage row (statistics) and the emoji's counter, in one statement. */
export async function recordEmojiUse(db: TenantDb, u: EmojiUse): Promise<void> {
  await db.query(
    `WITH used AS (
       INSERT INTO emoji_usage (tenant_id, emoji_id, pack_id, emoji, emotion, agent_id, platform, chat_stream_id,
                                trigger_type, message_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))
     UPDATE emojis SET usage_count = usage_count + 1, last_used_at = now()
     WHERE tenant_id = $1 AND emoji_id = $2`,
    [
      db.ctx.tenantId,
      u.emojiId,
      u.packId,
      u.emoji,
      u.emotion,
      u.agentId,
      u.platform,
      u.chatStreamId,
      u.triggerType,
      u.messageId,
    ],
  );
}

export interface EmojiStatistics {
  totalUses: number;
  byEmotion: Record<string, number>;
  byTrigger: Record<string, number>;
  top: { emoji_id: string | null; emoji: string | null; pack_id: string | null; uses: number }[];
  packs: number;
  emojis: number;
  images: number;
  storageBytes: number;
}

/** Uses since `since` and what the tenant stores, in one statement. */
export async function emojiStatistics(db: TenantDb, since: Date, top = 10): Promise<EmojiStatistics> {
  const { rows } = await db.query<{
    stats: Omit<EmojiStatistics, 'top'> & { top: EmojiStatistics['top'] | null };
  }>(
    `WITH u AS (SELECT * FROM emoji_usage WHERE tenant_id = $1 AND created_at >= $2)
     SELECT jsonb_build_object(
       'totalUses', (SELECT count(*) FROM u),
       'byEmotion', (SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM
                       (SELECT coalesce(emotion, 'none') AS k, count(*) AS n FROM u GROUP BY 1) x),
       'byTrigger', (SELECT coalesce(jsonb_object_agg(trigger_type, n), '{}') FROM
                       (SELECT trigger_type, count(*) AS n FROM u GROUP BY 1) x),
       'top', (SELECT jsonb_agg(t) FROM (SELECT emoji_id, emoji, pack_id, count(*) AS uses FROM u
                 GROUP BY emoji_id, emoji, pack_id ORDER BY count(*) DESC, emoji_id LIMIT $3) t),
       'packs', (SELECT count(*) FROM emoji_packs WHERE tenant_id = $1),
       'emojis', (SELECT count(*) FROM emojis WHERE tenant_id = $1),
       'images', (SELECT count(*) FROM emojis WHERE tenant_id = $1 AND image_data IS NOT NULL),
       'storageBytes', (SELECT coalesce(sum(octet_length(image_data)), 0) FROM emojis WHERE tenant_id = $1)
     ) AS stats`,
    [db.ctx.tenantId, since, top],
  );
  const s = rows[0]!.stats;
  return { ...s, top: s.top ?? [] };
}
