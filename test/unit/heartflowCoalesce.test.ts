import { coalesce, type PendingMessage } from '../../src/domain/heartflow/coalesce';
import { HeartflowConfig } from '../../src/domain/heartflow/config';
import { plan } from '../../src/domain/heartflow/planner';
import { initialHeartflowState, updateOnMessage } from '../../src/domain/heartflow/willingness';
import { mulberry32 } from '../../src/domain/random';

const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

interface Msg extends PendingMessage {
  text: string;
}

const pending = (n: number, step: number, mentioned: (i: number) => boolean): Msg[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `m${i}`,
    at: T0 + i * step,
    mentioned: mentioned(i),
    text: `@麦麦 ${i}`,
  }));

describe('coalesce', () => {
  it('answers a burst of 50 mentions with one batch targeting the last mention', () => {
    const burst = pending(50, 100, () => true);
    const batches = coalesce(burst, { maxBatch: 50, windowMs: 10_000 });
    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(batch?.coveredMessageIds).toHaveLength(50);
    expect(batch).toMatchObject({ targetMessageId: 'm49', mentioned: true, mentionCount: 50 });

    // One decision for the whole burst: the state sees every message, the planner runs once.
    let state = initialHeartflowState(T0);
    for (const m of burst)
      state = updateOnMessage(state, { at: m.at, interest: 0.3, mentioned: m.mentioned });
    const d = plan({
      state,
      config: HeartflowConfig.parse({}),
      messages: batch?.messages ?? [],
      now: T0 + 5000,
      rng: mulberry32(7),
    });
    expect(d).toMatchObject({ action: 'reply', targetMessageId: 'm49' });
  });

  it('uses the defaults (50 messages, 20 s) when no options are given', () => {
    expect(coalesce(pending(50, 100, () => true))).toHaveLength(1);
    expect(coalesce(pending(51, 100, () => true)).map((b) => b.messages.length)).toEqual([50, 1]);
  });

  it('targets the last mention, else the last message', () => {
    const [withMention] = coalesce(pending(5, 10, (i) => i === 2));
    expect(withMention?.targetMessageId).toBe('m2');
    const [without] = coalesce(pending(5, 10, () => false));
    expect(without).toMatchObject({ targetMessageId: 'm4', mentioned: false, mentionCount: 0 });
  });

  it('splits by batch size and by time window', () => {
    expect(
      coalesce(
        pending(10, 10, () => false),
        { maxBatch: 4, windowMs: 60_000 },
      ).map((b) => b.coveredMessageIds.length),
    ).toEqual([4, 4, 2]);
    const spread = coalesce(
      pending(6, 5_000, () => false),
      { maxBatch: 50, windowMs: 10_000 },
    );
    expect(spread.map((b) => b.coveredMessageIds)).toEqual([
      ['m0', 'm1', 'm2'],
      ['m3', 'm4', 'm5'],
    ]);
  });

  it('orders by time, keeps input order on ties and counts a repeated id once', () => {
    const msgs: Msg[] = [
      { id: 'b', at: T0 + 5, mentioned: false, text: '' },
      { id: 'a', at: T0, mentioned: false, text: '' },
      { id: 'c', at: T0 + 5, mentioned: false, text: '' },
      { id: 'a', at: T0, mentioned: true, text: 'retry' },
    ];
    const [batch] = coalesce(msgs);
    expect(batch?.coveredMessageIds).toEqual(['a', 'b', 'c']);
    expect(batch).toMatchObject({ firstAt: T0, lastAt: T0 + 5, mentioned: false });
  });

  it('returns no batches for nothing pending', () => {
    expect(coalesce([])).toEqual([]);
  });
});
