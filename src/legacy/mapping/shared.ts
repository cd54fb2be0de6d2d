import { createHash } from 'node:crypto';

import type { TargetRow } from '../targets';
import { chatStreamIdOf, compact, type MapContext, type StreamRef } from './common';

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

/** What both generations know of a chat, in MaiHive's terms. */
export interface ChatFacts {
  /** MaiBot's own id of the chat (0.x `stream_id`, 1.x `session_id`). */
  maibotId: string;
  platform: string;
  groupId: string | null;
  groupName: string | null;
  userId: string | null;
  created: Date | null;
  lastActive: Date | null;
  /** MaiBot's other columns, kept under `metadata.maibot` (nulls dropped). */
  maibot: Record<string, unknown>;
}

/** The `chat_streams` row of a MaiBot chat, on the id MaiHive's adapters use for it. */
export function chatStreamRow(agentId: string, f: ChatFacts): TargetRow {
  const chatStreamId = chatStreamIdOf(f.platform, f.groupId, f.userId, f.maibotId);
  return {
    key: chatStreamId,
    values: {
      chat_stream_id: chatStreamId,
      agent_id: agentId,
      platform: f.platform,
      chat_type: f.groupId ? 'group' : 'private',
      group_id: f.groupId,
      group_name: f.groupName,
      user_id: f.userId,
      metadata: { maibot: compact(f.maibot) },
      status: 'active',
      created_at: f.created ?? undefined,
      last_active_at: f.lastActive ?? f.created ?? undefined,
    },
  };
}

/** A chat row rebuilt from what messages say of it, marked so (`metadata.maibot.recreated`). */
export function recreatedChat(row: TargetRow): TargetRow {
  const metadata = row.values.metadata as { maibot: Record<string, unknown> };
  return {
    key: row.key,
    values: { ...row.values, metadata: { maibot: { ...metadata.maibot, recreated: true } } },
  };
}
