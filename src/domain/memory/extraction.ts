import { deterministicMemoryId } from './ids';
import { extractStatements, type Statement, type StatementKind } from './statements';
import { normalizeForKey } from './text';

/** One inbound chat message as the memory worker reads it. */
export interface SourceMessage {
  messageId: string;
  content: string;
  senderUserId: string | null;
  /** Display name (card name, nickname), if known. */
  senderName: string | null;
  /** ms since the epoch. */
  at: number;
}

export type MemoryScopeChoice = 'chat' | 'agent';

/**
 * Where extracted memories go.
 *
 * Default `chat`: what someone says in a group is remembered for that group only (the speaker is
 * named in the text and in a `user:<id>` tag). The one exception is a person describing
 * themselves to the bot in a **private** chat: that person is the bot's user, and who they are
 * and what they like holds wherever the agent meets them, so those facts and preferences are
 * stored with scope `agent` (visible in every chat of the agent). Explicit "记住…" requests and
 * summaries stay in their chat. `privateSelfFacts: 'chat'` turns the exception off (a tenant that
 * does not want anything said privately to surface in a group).
 */
export interface ScopePolicy {
  /** Scope of self-descriptions made in private chats. Default `agent`. */
  privateSelfFacts: MemoryScopeChoice;
}

export const DEFAULT_SCOPE_POLICY: ScopePolicy = Object.freeze({ privateSelfFacts: 'agent' });

/** A memory ready to store (`memory_chest` row minus the tenant/agent/stream columns). */
export interface MemoryCandidate {
  memoryId: string;
  memoryType: 'fact' | 'preference' | 'summary';
  scope: MemoryScopeChoice;
  title: string | null;
  content: string;
  importance: number;
  tags: string[];
  /** Messages the memory was drawn from. */
  sourceMessageIds: string[];
  senderUserId: string | null;
  /** `heuristic` or `llm`. */
  extractor: 'heuristic' | 'llm';
  /** Source time (ms), for the id and ordering. */
  at: number;
}

export interface ExtractionContext {
  agentId: string;
  platform: string;
  chatStreamId: string;
  chatType: 'group' | 'private';
  policy?: ScopePolicy;
}

const TYPE_OF: Record<StatementKind, 'fact' | 'preference'> = {
  name: 'fact',
  nickname: 'preference',
  identity: 'fact',
  origin: 'fact',
  residence: 'fact',
  attribute: 'fact',
  favorite: 'preference',
  like: 'preference',
  dislike: 'preference',
  remember: 'fact',
};

const IMPORTANCE_OF: Record<StatementKind, number> = {
  name: 0.8,
  nickname: 0.7,
  identity: 0.6,
  origin: 0.6,
  residence: 0.6,
  attribute: 0.7,
  favorite: 0.65,
  like: 0.6,
  dislike: 0.6,
  remember: 0.8,
};

/** Who said it, as the memory names them. */
export function speakerName(
  m: Pick<SourceMessage, 'senderName' | 'senderUserId'>,
  lang: 'zh' | 'en',
): string {
  if (m.senderName && m.senderName.trim().length > 0) return m.senderName.trim();
  if (m.senderUserId) return lang === 'zh' ? `用户${m.senderUserId}` : `user ${m.senderUserId}`;
  return lang === 'zh' ? '用户' : 'the user';
}

/** The statement as a third-person sentence about the speaker. */
export function renderStatement(s: Statement, who: string): string {
  const o = s.object;
  if (s.lang === 'zh') {
    switch (s.kind) {
      case 'name':
        return `${who}的名字是${o}`;
      case 'nickname':
        return `${who}希望被叫作${o}`;
      case 'identity':
        return `${who}是${o}`;
      case 'origin':
        return `${who}来自${o}`;
      case 'residence':
        return `${who}住在${o}`;
      case 'attribute':
        return `${who}的${s.attribute ?? ''}是${o}`;
      case 'favorite':
        return `${who}最喜欢的${s.attribute ?? ''}是${o}`;
      case 'like':
      case 'dislike':
        return `${who}${s.predicate ?? (s.kind === 'like' ? '喜欢' : '不喜欢')}${o}`;
      case 'remember':
        return `${who}让我记住：“${o}”`;
    }
  }
  switch (s.kind) {
    case 'name':
      return `${who}'s name is ${o}`;
    case 'nickname':
      return `${who} likes to be called ${o}`;
    case 'identity':
      return `${who} is ${o}`;
    case 'origin':
      return `${who} is from ${o}`;
    case 'residence':
      return `${who} lives in ${o}`;
    case 'attribute':
      return `${who}'s ${s.attribute ?? ''} is ${o}`;
    case 'favorite':
      return `${who}'s favorite ${s.attribute ?? ''} is ${o}`;
    case 'like':
    case 'dislike':
      return `${who} ${s.predicate ?? (s.kind === 'like' ? 'likes' : "doesn't like")} ${o}`;
    case 'remember':
      return `${who} asked me to remember: "${o}"`;
  }
}

/** Scope of a memory about the speaker (`speaker`) or about the conversation (`chat`). */
export function scopeFor(
  about: 'speaker' | 'chat',
  chatType: 'group' | 'private',
  policy: ScopePolicy = DEFAULT_SCOPE_POLICY,
): MemoryScopeChoice {
  return about === 'speaker' && chatType === 'private' ? policy.privateSelfFacts : 'chat';
}

/**
 * The id of a fact or preference: the same content in the same place is the same memory, whoever
 * said it how often. Chat-scoped ids include the stream; agent-scoped ones do not.
 */
export function factMemoryId(
  ctx: Pick<ExtractionContext, 'agentId' | 'chatStreamId'>,
  scope: MemoryScopeChoice,
  memoryType: string,
  content: string,
): string {
  const where = scope === 'agent' ? '' : ctx.chatStreamId;
  return deterministicMemoryId(['fact', ctx.agentId, scope, where, memoryType, normalizeForKey(content)]);
}

/** Keeps the first candidate of each id (a fact repeated within one batch is stored once). */
export function dedupeCandidates(candidates: readonly MemoryCandidate[]): MemoryCandidate[] {
  const seen = new Set<string>();
  return candidates.filter((c) => !seen.has(c.memoryId) && (seen.add(c.memoryId), true));
}

/** Facts and preferences of a batch of inbound messages, by the heuristic rules. Pure. */
export function extractHeuristicMemories(
  messages: readonly SourceMessage[],
  ctx: ExtractionContext,
): MemoryCandidate[] {
  const out: MemoryCandidate[] = [];
  for (const m of messages) {
    for (const s of extractStatements(m.content)) {
      const about = s.kind === 'remember' ? 'chat' : 'speaker';
      const scope = scopeFor(about, ctx.chatType, ctx.policy);
      const memoryType = TYPE_OF[s.kind];
      const content = renderStatement(s, speakerName(m, s.lang));
      out.push({
        memoryId: factMemoryId(ctx, scope, memoryType, content),
        memoryType,
        scope,
        title: null,
        content,
        importance: IMPORTANCE_OF[s.kind],
        tags: tagsFor(s.kind, m.senderUserId),
        sourceMessageIds: [m.messageId],
        senderUserId: m.senderUserId,
        extractor: 'heuristic',
        at: m.at,
      });
    }
  }
  return dedupeCandidates(out);
}

export function tagsFor(kind: string, senderUserId: string | null): string[] {
  return ['auto', kind, ...(senderUserId ? [`user:${senderUserId}`] : [])];
}
