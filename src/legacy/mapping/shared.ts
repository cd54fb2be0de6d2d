import { createHash } from 'node:crypto';

import type { TargetRow } from '../targets';
import type { MapContext, StreamRef } from './common';

/** The chat a row refers to, by its MaiBot id (every referenced chat is known: see `orphanChat`). */
export function streamFor(chatId: string | null, ctx: MapContext): StreamRef | undefined {
  if (chatId === null || chatId === '') return undefined;
  return ctx.streams.get(chatId);
}

/**
 * The pack the agent's imported emoji go to. Pack ids are identifiers of at most 128 characters, so
 * a long agent id is shortened to a hash.
 */
export function emojiPackRow(agentId: string): TargetRow {
  const id = `maibot.${agentId}`;
  const packId =
    id.length <= 128 ? id : `maibot.${createHash('sha256').update(agentId).digest('hex').slice(0, 40)}`;
  return {
    key: packId,
    values: {
      pack_id: packId,
      name: `MaiBot (${agentId})`,
      description: 'Emoji imported from a MaiBot database',
      platform: null,
    },
  };
}

/** MaiBot's free-text request status to ours; anything but success keeps its text as the error. */
export function llmStatus(raw: string | null): {
  status: 'success' | 'error' | 'timeout';
  error: string | null;
} {
  const s = (raw ?? 'success').trim();
  if (s === '' || s.toLowerCase() === 'success') return { status: 'success', error: null };
  if (s.toLowerCase().includes('timeout')) return { status: 'timeout', error: s };
  return { status: 'error', error: s };
}

/**
 * person_id is unique per tenant here, MaiBot's md5 only per bot: two agents of one tenant may know
 * the same person, so the agent is part of the id.
 */
export function personKey(agentId: string, personId: string): string {
  return `maibot:${agentId}:${personId}`;
}
