import { createHash } from 'node:crypto';

import type { TenantDb } from '../db/database';
import { emojiByImageHash, type EmojiRow, type NewEmoji } from '../db/repositories/emoji';
import { checkEmojiImage, decodeBase64Image } from '../domain/emoji';
import { newId } from '../domain/ids';
import { ValidationError } from '../errors';

/** One emoji of `POST /emoji/packs` as the route validated its shape. */
export interface EmojiUploadEntry {
  emoji?: string | undefined;
  image_base64?: string | undefined;
  description?: string | undefined;
  emotion: string;
  tags: string[];
  usage_weight: number;
}

/** What became of one entry: stored new, or the tenant's existing emoji holding the same image. */
export type UploadOutcome = { kind: 'new'; emoji: NewEmoji } | { kind: 'duplicate'; existing: EmojiRow };

/**
 * Decodes and checks every image (size after decoding, type from the bytes) and refuses the whole
 * upload with every failing field when any is wrong (`emojis.<i>.image_base64`).
 */
export function decodeUpload(
  entries: readonly EmojiUploadEntry[],
  now: number,
): { entry: EmojiUploadEntry; emoji: NewEmoji }[] {
  const fields: { path: string; issue: string }[] = [];
  const decoded = entries.map((entry, i) => {
    let image: NewEmoji['image'] = null;
    if (entry.image_base64 !== undefined) {
      const bytes = decodeBase64Image(entry.image_base64);
      const check = bytes ? checkEmojiImage(bytes) : { ok: false as const, issue: 'not valid base64' };
      if (!check.ok || !bytes)
        fields.push({ path: `emojis.${i}.image_base64`, issue: check.ok ? '' : check.issue });
      else
        image = { hash: createHash('sha256').update(bytes).digest('hex'), format: check.format, data: bytes };
    }
    const emoji: NewEmoji = {
      emojiId: newId('emo', now),
      emoji: entry.emoji ?? null,
      image,
      description: entry.description ?? null,
      emotion: entry.emotion,
      tags: entry.tags,
      usageWeight: entry.usage_weight,
    };
    return { entry, emoji };
  });
  if (fields.length > 0) throw new ValidationError('invalid emoji image', fields);
  return decoded;
}

/**
 * Splits decoded entries into those to store and those whose image the tenant already has (in any
 * pack, or earlier in the same upload): an image is stored once per tenant, by content hash.
 */
export async function deduplicate(
  db: TenantDb,
  packId: string,
  decoded: readonly { emoji: NewEmoji }[],
): Promise<UploadOutcome[]> {
  const hashes = decoded.flatMap((d) => (d.emoji.image ? [d.emoji.image.hash] : []));
  const stored = await emojiByImageHash(db, [...new Set(hashes)]);
  const seen = new Map<string, NewEmoji>();
  return decoded.map(({ emoji }): UploadOutcome => {
    const hash = emoji.image?.hash;
    if (hash === undefined) return { kind: 'new', emoji };
    const existing = stored.get(hash);
    if (existing) return { kind: 'duplicate', existing };
    const earlier = seen.get(hash);
    if (earlier) return { kind: 'duplicate', existing: pendingRow(packId, earlier) };
    seen.set(hash, emoji);
    return { kind: 'new', emoji };
  });
}

/** A row for an emoji stored by this same upload (reported like a stored one). */
export function pendingRow(packId: string, e: NewEmoji): EmojiRow {
  return {
    emoji_id: e.emojiId,
    pack_id: packId,
    emoji: e.emoji,
    image_hash: e.image?.hash ?? null,
    format: e.image?.format ?? null,
    size_bytes: e.image?.data.length ?? null,
    description: e.description,
    emotion: e.emotion,
    tags: e.tags,
    usage_weight: e.usageWeight,
    usage_count: 0,
    last_used_at: null,
  };
}
