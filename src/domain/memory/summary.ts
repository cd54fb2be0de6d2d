import { deterministicMemoryId } from './ids';
import { dominantLang, topicTerms, truncate } from './text';

/** When a chat stream's conversation is summarised. */
export interface SummaryThresholds {
  /** Inbound messages per summary; a due summary covers exactly this many. Default 20. */
  everyMessages: number;
  /** A shorter tail is summarised once its oldest message is this old, ms. Default 6 h. */
  maxAgeMs: number;
  /** …and only if it has at least this many inbound messages. Default 5. */
  minMessages: number;
}

export const DEFAULT_SUMMARY_THRESHOLDS: SummaryThresholds = Object.freeze({
  everyMessages: 20,
  maxAgeMs: 6 * 3600_000,
  minMessages: 5,
});

/**
 * How many of the unsummarised inbound messages to summarise now (0 = not yet): a full chunk of
 * `everyMessages` as soon as there is one, else the whole tail when it has aged past `maxAgeMs`.
 * Fixed-size chunks keep summaries aligned however the jobs happen to be cut.
 */
export function summaryDue(
  pending: { count: number; oldestAt: number | null },
  now: number,
  t: SummaryThresholds = DEFAULT_SUMMARY_THRESHOLDS,
): number {
  if (pending.count >= t.everyMessages) return t.everyMessages;
  if (pending.count >= t.minMessages && pending.oldestAt !== null && now - pending.oldestAt >= t.maxAgeMs) {
    return pending.count;
  }
  return 0;
}

/** One line of the conversation being summarised (inbound or bot). */
export interface ConversationLine {
  messageId: string;
  sender: string;
  content: string;
  isBot: boolean;
  /** ms since the epoch. */
  at: number;
}

export interface SummaryDraft {
  title: string;
  content: string;
  keywords: string[];
}

function fmtUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

/** Topic terms found in most messages (document frequency), ties by first appearance. */
export function summaryKeywords(lines: readonly ConversationLine[], max = 5): string[] {
  const df = new Map<string, { count: number; first: number }>();
  let order = 0;
  for (const line of lines) {
    for (const term of new Set(topicTerms(line.content))) {
      const e = df.get(term);
      if (e) e.count++;
      else df.set(term, { count: 1, first: order++ });
    }
  }
  const ranked = [...df.entries()].sort((a, b) => b[1].count - a[1].count || a[1].first - b[1].first);
  const picked: string[] = [];
  for (const [term] of ranked) {
    // Overlapping CJK bigrams of one word ("咖啡" "啡馆") would repeat it: keep the first.
    if (picked.some((p) => p.includes(term) || term.includes(p) || overlaps(p, term))) continue;
    picked.push(term);
    if (picked.length >= max) break;
  }
  return picked;
}

function overlaps(a: string, b: string): boolean {
  const ca = [...a];
  const cb = [...b];
  return ca.length === 2 && cb.length === 2 && (ca[1] === cb[0] || cb[1] === ca[0]);
}

/**
 * A deterministic summary without a language model: time span, participants, topics and the
 * few messages that carry the most topic terms. Written in the conversation's main language.
 */
export function buildHeuristicSummary(lines: readonly ConversationLine[]): SummaryDraft {
  const lang = dominantLang(lines.map((l) => l.content));
  const first = lines[0];
  const last = lines[lines.length - 1];
  const span = first && last ? `${fmtUtc(first.at)}–${fmtUtc(last.at).slice(11)} UTC` : '';
  const people = [...new Set(lines.filter((l) => !l.isBot).map((l) => l.sender))];
  const keywords = summaryKeywords(lines);
  const scored = lines
    .map((l, i) => ({
      l,
      i,
      score: keywords.filter((k) => l.content.toLowerCase().includes(k)).length + (l.isBot ? -0.5 : 0),
    }))
    .filter((x) => x.l.content.trim().length > 0)
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, 3)
    .sort((a, b) => a.i - b.i);
  const inbound = lines.filter((l) => !l.isBot).length;
  const shownPeople = people.slice(0, 8);
  if (lang === 'zh') {
    const key = scored.map((x) => `${x.l.sender}：“${truncate(x.l.content.trim(), 40)}”`).join('；');
    const content = [
      `${span}，${inbound}条消息`,
      shownPeople.length ? `参与者：${shownPeople.join('、')}${people.length > 8 ? '等' : ''}` : '',
      keywords.length ? `话题：${keywords.join('、')}` : '',
      key ? `要点：${key}` : '',
    ]
      .filter((p) => p.length > 0)
      .join('。');
    return { title: `聊天摘要 ${first ? fmtUtc(first.at) : ''}`.trim(), content: `${content}。`, keywords };
  }
  const key = scored.map((x) => `${x.l.sender}: "${truncate(x.l.content.trim(), 80)}"`).join('; ');
  const content = [
    `${span}, ${inbound} messages`,
    shownPeople.length
      ? `participants: ${shownPeople.join(', ')}${people.length > 8 ? ' and others' : ''}`
      : '',
    keywords.length ? `topics: ${keywords.join(', ')}` : '',
    key ? `highlights: ${key}` : '',
  ]
    .filter((p) => p.length > 0)
    .join('. ');
  return { title: `Chat summary ${first ? fmtUtc(first.at) : ''}`.trim(), content: `${content}.`, keywords };
}

/** A summary's id: its stream and the first and last inbound messages it covers. */
export function summaryMemoryId(
  ctx: { agentId: string; chatStreamId: string },
  firstMessageId: string,
  lastMessageId: string,
  at: number,
): string {
  return deterministicMemoryId(['summary', ctx.agentId, ctx.chatStreamId, firstMessageId, lastMessageId], at);
}

/** Importance of a summary: more messages, a little more weight (0.4 … 0.6). */
export function summaryImportance(inboundCount: number): number {
  return Math.round((0.4 + 0.2 * Math.min(1, inboundCount / 50)) * 100) / 100;
}
