import { z } from 'zod';

import {
  dedupeCandidates,
  type ExtractionContext,
  factMemoryId,
  type MemoryCandidate,
  scopeFor,
  type SourceMessage,
  speakerName,
  tagsFor,
} from './extraction';
import type { ConversationLine } from './summary';
import { detectLang, truncate } from './text';

/** A chat message in OpenAI's shape (kept local so the domain does not import the LLM layer). */
export interface PromptMessage {
  role: 'system' | 'user';
  content: string;
}

/** Longest message text put into a prompt, characters. */
const MAX_LINE = 500;

const EXTRACTION_SYSTEM = [
  'You extract long-term memories about the people in a chat log for a chat bot.',
  'Output JSON Lines only: one JSON object per line, nothing else, no code fences.',
  'Each object: {"type": "fact" | "preference", "content": string, "importance": number 0..1,',
  '"about": "speaker" | "chat", "message_id": string}.',
  '- "content" is one short third-person sentence naming the person, in the language of the chat.',
  '- "about": "speaker" for what a person says about themselves, "chat" for anything else worth remembering.',
  '- "message_id" is the id in brackets of the message the memory comes from.',
  '- Only what people state as true. Never turn questions, jokes, hypotheticals or quotes into memories.',
  '- Output nothing when there is nothing worth remembering.',
].join('\n');

/** The prompt asking a model for the facts and preferences in a batch of messages. */
export function buildExtractionPrompt(messages: readonly SourceMessage[]): PromptMessage[] {
  const log = messages
    .map((m) => {
      const who = speakerName(m, detectLang(m.content));
      return `[${m.messageId}] ${who}: ${truncate(m.content.replace(/\s+/g, ' ').trim(), MAX_LINE)}`;
    })
    .join('\n');
  return [
    { role: 'system', content: EXTRACTION_SYSTEM },
    { role: 'user', content: `Chat log:\n${log}` },
  ];
}

const LlmMemoryLine = z.object({
  type: z.enum(['fact', 'preference']),
  content: z.string().trim().min(1).max(500),
  importance: z.number().min(0).max(1).optional(),
  about: z.enum(['speaker', 'chat']).optional(),
  message_id: z.string().optional(),
});

export type ParsedExtraction =
  { ok: true; candidates: MemoryCandidate[]; rejectedLines: number } | { ok: false; reason: string };

/**
 * Reads the model's JSON Lines. Lines that are not valid objects are dropped; an answer with text
 * but not a single valid line is a parse failure (the caller falls back to the heuristics), while
 * an empty answer (or `[]`/`none`) means "nothing to remember".
 */
export function parseExtraction(
  answer: string,
  messages: readonly SourceMessage[],
  ctx: ExtractionContext,
): ParsedExtraction {
  const text = answer
    .trim()
    .replace(/^```(?:json|jsonl)?\s*/i, '')
    .replace(/```\s*$/, '')
    .trim();
  if (text === '' || /^(?:\[\s*\]|none|null|nothing)\.?$/i.test(text)) {
    return { ok: true, candidates: [], rejectedLines: 0 };
  }
  const byId = new Map(messages.map((m) => [m.messageId, m]));
  const fallback = messages[messages.length - 1];
  const candidates: MemoryCandidate[] = [];
  let rejected = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/,$/, '');
    if (line === '' || line === '[' || line === ']') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      rejected++;
      continue;
    }
    const parsed = LlmMemoryLine.safeParse(value);
    if (!parsed.success) {
      rejected++;
      continue;
    }
    const item = parsed.data;
    const source = (item.message_id ? byId.get(item.message_id) : undefined) ?? fallback;
    if (!source) {
      rejected++;
      continue;
    }
    const scope = scopeFor(item.about ?? 'speaker', ctx.chatType, ctx.policy);
    candidates.push({
      memoryId: factMemoryId(ctx, scope, item.type, item.content),
      memoryType: item.type,
      scope,
      title: null,
      content: item.content,
      importance: item.importance ?? 0.6,
      tags: tagsFor('llm', source.senderUserId),
      sourceMessageIds: [source.messageId],
      senderUserId: source.senderUserId,
      extractor: 'llm',
      at: source.at,
    });
  }
  if (candidates.length === 0) return { ok: false, reason: `no valid JSON line in ${rejected}` };
  return { ok: true, candidates: dedupeCandidates(candidates), rejectedLines: rejected };
}

/** The prompt asking a model to summarise a stretch of conversation. */
export function buildSummaryPrompt(lines: readonly ConversationLine[]): PromptMessage[] {
  const log = lines
    .map(
      (l) =>
        `${l.isBot ? '(bot) ' : ''}${l.sender}: ${truncate(l.content.replace(/\s+/g, ' ').trim(), MAX_LINE)}`,
    )
    .join('\n');
  return [
    {
      role: 'system',
      content:
        'Summarise the chat below for the bot’s long-term memory in at most 3 sentences, in the ' +
        'language of the chat: who took part, what was discussed, anything decided or promised. ' +
        'Plain text only.',
    },
    { role: 'user', content: log },
  ];
}

/** The model's summary, or undefined when it is unusable (empty, JSON, far too long). */
export function parseSummary(answer: string): string | undefined {
  const text = answer.trim();
  if (text.length === 0 || text.length > 4000 || /^[[{]/.test(text)) return undefined;
  return text;
}
