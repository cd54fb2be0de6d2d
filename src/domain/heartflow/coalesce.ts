/**
 * Burst coalescing: the pending messages of one chat stream are cut into batches, each answered by
 * at most one planner decision and one LLM call, so a burst of 50 mentions gets one reply, not 50.
 *
 * Messages are taken in time order (ties keep their input order; a repeated id counts once). A
 * batch closes when it holds `maxBatch` messages or the next message arrived more than `windowMs`
 * after the batch's first one. The reply targets the batch's last mention, else its last message.
 */

/** What coalescing needs of a pending message; extra fields ride along untouched. */
export interface PendingMessage {
  id: string;
  /** ms since the epoch (the ingress's `receivedAt`). */
  at: number;
  /** `detectMention(...).mentioned` */
  mentioned: boolean;
}

export interface CoalesceOptions {
  /** Most messages answered by one decision. Default 50. */
  maxBatch: number;
  /** Longest span of one batch, from its first message, in ms. Default 20000. */
  windowMs: number;
}

export const DEFAULT_COALESCE_OPTIONS: Readonly<CoalesceOptions> = { maxBatch: 50, windowMs: 20_000 };

export interface MessageBatch<M extends PendingMessage = PendingMessage> {
  /** The batch's messages, oldest first. */
  messages: M[];
  /** The message a reply answers (quotes): the last mention, else the last message. */
  targetMessageId: string;
  /** Every message id the batch's decision covers (to mark them processed together). */
  coveredMessageIds: string[];
  mentioned: boolean;
  mentionCount: number;
  firstAt: number;
  lastAt: number;
}

function batchOf<M extends PendingMessage>(messages: M[]): MessageBatch<M> {
  const first = messages[0];
  const last = messages[messages.length - 1];
  if (first === undefined || last === undefined) throw new Error('coalesce: empty batch');
  const mentions = messages.filter((m) => m.mentioned);
  const target = mentions[mentions.length - 1] ?? last;
  return {
    messages,
    targetMessageId: target.id,
    coveredMessageIds: messages.map((m) => m.id),
    mentioned: mentions.length > 0,
    mentionCount: mentions.length,
    firstAt: first.at,
    lastAt: last.at,
  };
}

/** Cuts one stream's pending messages into batches, oldest batch first. */
export function coalesce<M extends PendingMessage>(
  pending: readonly M[],
  options: Partial<CoalesceOptions> = {},
): MessageBatch<M>[] {
  const maxBatch = Math.max(1, Math.floor(options.maxBatch ?? DEFAULT_COALESCE_OPTIONS.maxBatch));
  const windowMs = Math.max(0, options.windowMs ?? DEFAULT_COALESCE_OPTIONS.windowMs);
  const seen = new Set<string>();
  const ordered = pending
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => {
      if (seen.has(m.id)) return false;
      seen.add(m.id);
      return true;
    })
    .sort((a, b) => a.m.at - b.m.at || a.i - b.i)
    .map(({ m }) => m);

  const batches: MessageBatch<M>[] = [];
  let current: M[] = [];
  for (const m of ordered) {
    const first = current[0];
    if (first !== undefined && (current.length >= maxBatch || m.at - first.at > windowMs)) {
      batches.push(batchOf(current));
      current = [];
    }
    current.push(m);
  }
  if (current.length > 0) batches.push(batchOf(current));
  return batches;
}
