import { HeartflowConfig as ConfigSchema, type HeartflowConfig } from '../../src/domain/heartflow/config';
import {
  applyDecision,
  continuousLimitReached,
  type HeartflowDecision,
  isQuietCommand,
  plan,
  type PlanInput,
  type PlannedMessage,
  UNANSWERED_LIMIT,
} from '../../src/domain/heartflow/planner';
import {
  type HeartflowState,
  initialHeartflowState,
  storedHeartflowState,
  updateOnMessage,
  updateOnQuiet,
  updateOnReply,
} from '../../src/domain/heartflow/willingness';
import { mulberry32, type Rng, seedFromString } from '../../src/domain/random';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0); // 12:00 UTC
const config = (over: Partial<HeartflowConfig> = {}): HeartflowConfig => ConfigSchema.parse(over);
const msg = (id: string, text: string, mentioned = false): PlannedMessage => ({ id, text, mentioned });

/** A normal-state stream with the given willingness. */
function stateWith(willingness: number, over: Partial<HeartflowState> = {}): HeartflowState {
  const s = updateOnMessage(initialHeartflowState(NOW - 1000), {
    at: NOW - 1000,
    interest: 0,
    mentioned: false,
  });
  return { ...s, willingness, lastUpdatedAt: NOW, ...over };
}

function decide(
  over: Partial<PlanInput> & { messages: PlannedMessage[] },
  rng: Rng = mulberry32(1),
): HeartflowDecision {
  return plan({ state: stateWith(0.5), config: config(), now: NOW, rng, ...over });
}

/** How many of `runs` seeded plans reply (text or emoji). */
function replyRate(input: Omit<PlanInput, 'rng'>, runs: number): number {
  let replies = 0;
  for (let seed = 0; seed < runs; seed++) {
    const d = plan({ ...input, rng: mulberry32(seed) });
    if (d.action === 'reply' || d.action === 'emoji') replies++;
  }
  return replies / runs;
}

describe('plan', () => {
  it('always replies to a mention, targeting it, whatever the willingness or talk value', () => {
    const messages = [msg('m1', '在吗'), msg('m2', '@麦麦 今天吃什么', true), msg('m3', '我也想知道')];
    for (let seed = 0; seed < 50; seed++) {
      const d = decide(
        { state: stateWith(0), config: config({ talk_value: 0 }), messages },
        mulberry32(seed),
      );
      expect(d).toMatchObject({
        action: 'reply',
        reason: 'mentioned',
        targetMessageId: 'm2',
        replyProbability: 1,
      });
    }
  });

  it('answers a private chat like a mention', () => {
    const d = decide({ state: stateWith(0), messages: [msg('p1', '你好')], chatType: 'private' });
    expect(d).toMatchObject({ action: 'reply', reason: 'mentioned' });
  });

  it('does not force a reply to a mention when mentioned_bot_reply is off', () => {
    const d = decide({
      state: stateWith(0),
      config: config({ mentioned_bot_reply: false }),
      messages: [msg('m1', '@麦麦', true)],
    });
    expect(d.action).toBe('no_reply');
  });

  it('keeps quiet in quiet hours unless mentioned', () => {
    const quiet = config({ talk_value: 1, quiet_hours: [{ start: '11:00', end: '13:00' }] });
    for (let seed = 0; seed < 50; seed++) {
      const d = decide(
        { state: stateWith(1), config: quiet, messages: [msg('a', '大家好')] },
        mulberry32(seed),
      );
      expect(d).toMatchObject({ action: 'no_reply', reason: 'quiet_hours', replyProbability: 0 });
    }
    const called = decide({ state: stateWith(1), config: quiet, messages: [msg('b', '麦麦在吗', true)] });
    expect(called.action).toBe('reply');
    // 12:00 UTC is 20:00 in UTC+8, outside the window.
    const local = decide({
      state: stateWith(1),
      config: quiet,
      messages: [msg('a', '大家好')],
      utcOffsetMinutes: 480,
    });
    expect(local.reason).not.toBe('quiet_hours');
  });

  it('never replies unprompted at talk_value 0', () => {
    const input = {
      state: stateWith(1),
      config: config({ talk_value: 0 }),
      messages: [msg('a', '有人吗？')],
      now: NOW,
    };
    expect(replyRate(input, 500)).toBe(0);
  });

  it('usually replies at talk_value 1 with high willingness (seeded, within bounds)', () => {
    const input = {
      state: stateWith(0.9),
      config: config({ talk_value: 1 }),
      messages: [msg('a', '有人吗？')],
      now: NOW,
    };
    const rate = replyRate(input, 1000);
    expect(rate).toBeGreaterThan(0.85);
    expect(rate).toBeLessThan(0.95);
    expect(plan({ ...input, rng: mulberry32(0) }).replyProbability).toBeCloseTo(0.9, 10);
  });

  it('replies more when focused and less at a lower talk value', () => {
    const base = { messages: [msg('a', '有人吗？')], now: NOW };
    const normal = replyRate({ ...base, state: stateWith(0.4), config: config({ talk_value: 0.5 }) }, 1000);
    const focused = replyRate(
      { ...base, state: stateWith(0.4, { state: 'focused' }), config: config({ talk_value: 0.5 }) },
      1000,
    );
    const timid = replyRate({ ...base, state: stateWith(0.4), config: config({ talk_value: 0.1 }) }, 1000);
    expect(normal).toBeGreaterThan(0.15);
    expect(normal).toBeLessThan(0.25);
    expect(focused).toBeGreaterThan(normal + 0.05);
    expect(timid).toBeLessThan(0.08);
  });

  it('goes quiet until called on "闭嘴" and a mention brings it back', () => {
    const spoke = stateWith(0.9, { lastReplyAt: NOW - 60_000 });
    const told = decide({ state: spoke, config: config({ talk_value: 1 }), messages: [msg('q', '闭嘴')] });
    expect(told).toMatchObject({
      action: 'no_reply_until_call',
      reason: 'quiet_command',
      targetMessageId: 'q',
    });

    let s = applyDecision(spoke, told, NOW);
    expect(s.noReplyUntilCall).toBe(true);
    s = updateOnMessage(s, { at: NOW + 1000, interest: 1, mentioned: false });
    for (let seed = 0; seed < 50; seed++) {
      const d = plan({
        state: s,
        config: config({ talk_value: 1 }),
        messages: [msg('x', '来聊天吧？')],
        now: NOW + 1000,
        rng: mulberry32(seed),
      });
      expect(d).toMatchObject({ action: 'no_reply', reason: 'waiting_for_call' });
    }

    s = updateOnMessage(s, { at: NOW + 2000, interest: 0.2, mentioned: true });
    expect(s.noReplyUntilCall).toBe(false);
    const back = plan({
      state: s,
      config: config(),
      messages: [msg('y', '麦麦回来吧', true)],
      now: NOW + 2000,
      rng: mulberry32(3),
    });
    expect(back.action).toBe('reply');
  });

  it('takes "@bot 闭嘴" and "shut up" as quiet commands, but not when the bot is not involved', () => {
    expect(decide({ messages: [msg('q', '@麦麦 闭嘴', true)] }).action).toBe('no_reply_until_call');
    const spoke = stateWith(0, { lastReplyAt: NOW - 1000 });
    expect(decide({ state: spoke, messages: [msg('q', 'please shut up')] }).action).toBe(
      'no_reply_until_call',
    );
    expect(decide({ state: stateWith(0), messages: [msg('q', '你俩别吵了，闭嘴吧')] }).action).toBe(
      'no_reply',
    );
    expect(isQuietCommand('你不用闭嘴')).toBe(false);
  });

  it('lets the newest explicit signal win: a mention after a quiet command replies', () => {
    const spoke = stateWith(0.2, { lastReplyAt: NOW - 1000 });
    const d = decide({ state: spoke, messages: [msg('q', '闭嘴'), msg('m', '@麦麦 还是说说吧', true)] });
    expect(d).toMatchObject({ action: 'reply', targetMessageId: 'm' });
  });

  it('stops waiting after many unanswered messages in a row', () => {
    const s = stateWith(0, { messagesSinceReply: UNANSWERED_LIMIT });
    expect(decide({ state: s, messages: [msg('a', '随便聊聊')] })).toMatchObject({
      action: 'no_reply_until_call',
      reason: 'unanswered_streak',
    });
    expect(
      decide({ state: { ...s, messagesSinceReply: UNANSWERED_LIMIT - 1 }, messages: [msg('a', '随便')] })
        .action,
    ).toBe('no_reply');
  });

  it('answers laughter with an emoji when auto emoji is on, never when it is off', () => {
    const input = { state: stateWith(1), messages: [msg('h', '哈哈哈哈哈')], now: NOW };
    const decisions = Array.from({ length: 200 }, (_, seed) =>
      plan({ ...input, config: config({ talk_value: 1 }), rng: mulberry32(seed) }),
    );
    const emoji = decisions.filter((d) => d.action === 'emoji');
    expect(emoji.length).toBeGreaterThan(80);
    expect(emoji[0]?.emotion).toBe('happy');
    const off = config({ talk_value: 1, enable_auto_emoji: false });
    for (let seed = 0; seed < 200; seed++)
      expect(plan({ ...input, config: off, rng: mulberry32(seed) }).action).not.toBe('emoji');
    const serious = plan({
      ...input,
      config: config({ talk_value: 1 }),
      messages: [msg('s', '能解释一下这个报错吗？')],
      rng: mulberry32(0),
    });
    expect(serious.action).toBe('reply');
  });

  it('runs a plugin action invoked as a command, ignoring unknown and built-in names', () => {
    const pluginActions = ['weather', 'reply'];
    expect(decide({ messages: [msg('w', '/weather 北京')], pluginActions })).toMatchObject({
      action: 'weather',
      reason: 'plugin_command',
      targetMessageId: 'w',
    });
    expect(decide({ state: stateWith(0), messages: [msg('w', '/stocks')], pluginActions }).action).toBe(
      'no_reply',
    );
    expect(decide({ state: stateWith(0), messages: [msg('w', '/reply')], pluginActions }).action).toBe(
      'no_reply',
    );
  });

  it('makes the same decisions for the same seed', () => {
    const run = (seed: number): string[] => {
      const rng = mulberry32(seed);
      return Array.from(
        { length: 100 },
        (_, i) =>
          plan({
            state: stateWith((i % 10) / 10),
            config: config(),
            messages: [msg(`m${i}`, '嗯嗯 哈哈')],
            now: NOW,
            rng,
          }).action,
      );
    };
    expect(run(seedFromString('msg_abc'))).toEqual(run(seedFromString('msg_abc')));
    expect(run(1)).not.toEqual(run(2));
  });

  it('says no_reply for an empty batch', () => {
    expect(decide({ messages: [] })).toMatchObject({
      action: 'no_reply',
      reason: 'empty_batch',
      targetMessageId: undefined,
    });
  });
});

describe('applyDecision', () => {
  it('damps willingness after a reply or emoji and leaves no_reply alone', () => {
    const s = stateWith(0.8);
    const reply = decide({ state: s, messages: [msg('m', '@麦麦', true)] });
    expect(applyDecision(s, reply, NOW).willingness).toBeCloseTo(updateOnReply(s, NOW).willingness, 10);
    const none = decide({ state: stateWith(0), messages: [msg('m', 'hi')] });
    expect(applyDecision(s, none, NOW)).toBe(s);
  });
});

describe('continuous replies (max_continuous_replies, MaiBot "你已经连续回复了…")', () => {
  /** Runs the planner over `texts` one batch each, a minute apart, applying each decision. */
  function converse(
    texts: string[],
    cfg: HeartflowConfig,
    start: HeartflowState = stateWith(1, { state: 'focused', lastFocusAt: NOW }),
  ) {
    let state = start;
    const decisions: HeartflowDecision[] = [];
    texts.forEach((text, i) => {
      const at = NOW + i * 60_000;
      const mentioned = text.startsWith('@');
      state = updateOnMessage(state, { at, interest: 1, mentioned });
      // Full willingness every time: only the limit can hold the bot back.
      state = { ...state, willingness: 1 };
      const d = plan({
        state,
        config: cfg,
        messages: [msg(`m${i}`, text, mentioned)],
        now: at,
        rng: () => 0,
      });
      decisions.push(d);
      state = applyDecision(state, d, at);
    });
    return { decisions, state };
  }

  it('defaults to 3 and counts batches answered in a row', () => {
    expect(config().max_continuous_replies).toBe(3);
    const { state } = converse(['a', 'b'], config({ max_continuous_replies: 0 }));
    expect(state.continuousReplies).toBe(2);
  });

  it('after the limit lets one batch pass (no_reply, continuous_replies), then talks again', () => {
    const { decisions, state } = converse(
      ['一', '二', '三', '四', '五', '六', '七', '八'],
      config({ talk_value: 1, max_continuous_replies: 3, enable_auto_emoji: false }),
    );
    expect(decisions.map((d) => d.action)).toEqual([
      'reply',
      'reply',
      'reply',
      'no_reply',
      'reply',
      'reply',
      'reply',
      'no_reply',
    ]);
    expect(decisions[3]).toMatchObject({ reason: 'continuous_replies', replyProbability: 0 });
    expect(state.continuousReplies).toBe(0);
  });

  it('never holds back at 0 (no limit), and holds back after every reply at 1', () => {
    const texts = ['一', '二', '三', '四', '五', '六'];
    const unlimited = converse(
      texts,
      config({ talk_value: 1, max_continuous_replies: 0, enable_auto_emoji: false }),
    );
    expect(unlimited.decisions.every((d) => d.action === 'reply')).toBe(true);
    const one = converse(
      texts,
      config({ talk_value: 1, max_continuous_replies: 1, enable_auto_emoji: false }),
    );
    expect(one.decisions.map((d) => d.action)).toEqual([
      'reply',
      'no_reply',
      'reply',
      'no_reply',
      'reply',
      'no_reply',
    ]);
  });

  it('still answers a mention beyond the limit, and the run goes on counting', () => {
    const { decisions, state } = converse(
      ['一', '二', '@麦麦 你怎么不说话了', '@麦麦 在吗'],
      config({ talk_value: 1, max_continuous_replies: 2, enable_auto_emoji: false }),
    );
    expect(decisions.map((d) => [d.action, d.reason])).toEqual([
      ['reply', 'willing'],
      ['reply', 'willing'],
      ['reply', 'mentioned'],
      ['reply', 'mentioned'],
    ]);
    expect(state.continuousReplies).toBe(4);
    expect(continuousLimitReached(state, { max_continuous_replies: 2 })).toBe(true);
    expect(continuousLimitReached(state, { max_continuous_replies: 0 })).toBe(false);
  });

  it('ends the run on a long silence, a quiet command, and reads old stored states as 0', () => {
    const run = { ...stateWith(1), continuousReplies: 5 };
    expect(updateOnQuiet(run, NOW).continuousReplies).toBe(0);
    const later = updateOnMessage(run, { at: NOW + 31 * 60_000, interest: 0, mentioned: false });
    expect(later.continuousReplies).toBe(0);
    const { continuousReplies: _dropped, ...old } = run;
    expect(storedHeartflowState(JSON.parse(JSON.stringify(old)), NOW).continuousReplies).toBe(0);
  });
});
