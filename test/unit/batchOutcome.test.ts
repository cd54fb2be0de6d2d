import type { MessageRow } from '../../src/db/repositories/messages';
import { type HeartflowDecision, initialHeartflowState } from '../../src/domain/heartflow';
import { batchOutcomes, type BatchResult } from '../../src/workers/batchOutcome';

const T0 = Date.UTC(2030, 0, 1, 10, 0, 0);

function row(id: string, createdAt: number): MessageRow {
  return { message_id: id, created_at: new Date(createdAt) } as MessageRow;
}

function batch(reply: BatchResult['reply'], mentioned: string[] = []): BatchResult {
  const covered = [row('m1', T0), row('m2', T0 + 100), row('m3', T0 + 200)];
  return {
    decision: { action: 'reply', reason: 'mentioned', replyProbability: 1 } as HeartflowDecision,
    target: covered[2]!,
    covered,
    mentionedIds: new Set(mentioned),
    reply,
    state: initialHeartflowState(T0),
    startedAt: T0 + 1000,
  };
}

describe('the outcomes of a stored batch', () => {
  it('gives the answer to the target and to everyone else who called the bot; the rest were heard', () => {
    const outcomes = batchOutcomes(
      batch({ text: '在的', tokens: 7, error: null, usage: [] }, ['m1']),
      T0 + 1500,
    );
    expect(outcomes.map((o) => [o.messageId, o.status, o.response])).toEqual([
      ['m1', 'replied', '在的'],
      ['m2', 'no_reply', null],
      ['m3', 'replied', '在的'],
    ]);
    // Tokens and the action belong to the target; the others are marked coalesced into it.
    expect(outcomes.map((o) => o.tokensUsed)).toEqual([null, null, 7]);
    expect(outcomes[0]?.actionsTaken).toEqual([{ type: 'coalesced', into: 'm3' }]);
    expect(outcomes.map((o) => o.queueWaitMs)).toEqual([1000, 900, 800]);
    expect(outcomes.every((o) => o.processingTimeMs === 500)).toBe(true);
  });

  it('fails every covered message with the reason when the reply failed', () => {
    const outcomes = batchOutcomes(
      batch({ text: null, tokens: null, error: 'LLM quota exceeded', usage: [] }),
      T0,
    );
    expect(outcomes.every((o) => o.status === 'failed' && o.error === 'LLM quota exceeded')).toBe(true);
  });
});
