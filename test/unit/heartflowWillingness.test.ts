import {
  ABSENT_AFTER_MS,
  decayWillingness,
  FOCUS_MAX_UNANSWERED,
  FOCUS_TIMEOUT_MS,
  type HeartflowState,
  initialHeartflowState,
  stateAt,
  storedHeartflowState,
  updateOnMessage,
  updateOnQuiet,
  updateOnReply,
  WILLINGNESS_HALF_LIFE_MS,
} from '../../src/domain/heartflow/willingness';

const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
const SEC = 1000;

function message(state: HeartflowState, at: number, interest: number, mentioned = false): HeartflowState {
  return updateOnMessage(state, { at, interest, mentioned });
}

describe('willingness', () => {
  it('halves every half-life and never grows with time', () => {
    expect(WILLINGNESS_HALF_LIFE_MS).toBe(120_000);
    expect(decayWillingness(0.8, WILLINGNESS_HALF_LIFE_MS)).toBeCloseTo(0.4, 10);
    expect(decayWillingness(0.8, 2 * WILLINGNESS_HALF_LIFE_MS)).toBeCloseTo(0.2, 10);
    expect(decayWillingness(0.8, -5000)).toBe(0.8);
  });

  it('rises by 0.35 × interest per message and 0.5 per mention, capped at 1', () => {
    let s = message(initialHeartflowState(T0), T0, 0.5);
    expect(s.willingness).toBeCloseTo(0.175, 10);
    s = message(s, T0, 0, true);
    expect(s.willingness).toBeCloseTo(0.675, 10);
    s = message(s, T0, 1, true);
    expect(s.willingness).toBe(1);
  });

  it('decays between messages', () => {
    let s = message(initialHeartflowState(T0), T0, 1); // 0.35
    s = message(s, T0 + WILLINGNESS_HALF_LIFE_MS, 0); // 0.175
    expect(s.willingness).toBeCloseTo(0.175, 10);
    expect(stateAt(s, T0 + 2 * WILLINGNESS_HALF_LIFE_MS).willingness).toBeCloseTo(0.0875, 10);
  });

  it('keeps 35% after a reply and resets the unanswered count', () => {
    let s = message(initialHeartflowState(T0), T0, 0, true); // 0.5
    s = message(s, T0, 0.4); // 0.64
    expect(s.messagesSinceReply).toBe(2);
    s = updateOnReply(s, T0);
    expect(s.willingness).toBeCloseTo(0.224, 10);
    expect(s.messagesSinceReply).toBe(0);
    expect(s.lastReplyAt).toBe(T0);
  });

  it('averages interest with weight 0.3 for the newest message', () => {
    let s = message(initialHeartflowState(T0), T0, 1);
    expect(s.interest).toBe(1);
    s = message(s, T0 + SEC, 0);
    expect(s.interest).toBeCloseTo(0.7, 10);
  });

  it('clamps nonsense interest', () => {
    expect(message(initialHeartflowState(T0), T0, Number.NaN).willingness).toBe(0);
    expect(message(initialHeartflowState(T0), T0, 7).willingness).toBeCloseTo(0.35, 10);
  });
});

describe('stream state machine', () => {
  it('starts absent and wakes to normal on a message', () => {
    const s0 = initialHeartflowState(T0);
    expect(s0.state).toBe('absent');
    expect(message(s0, T0, 0.2).state).toBe('normal');
  });

  it('turns absent after 30 minutes of silence', () => {
    const s = message(initialHeartflowState(T0), T0, 0.2);
    expect(stateAt(s, T0 + ABSENT_AFTER_MS - 1).state).toBe('normal');
    expect(stateAt(s, T0 + ABSENT_AFTER_MS).state).toBe('absent');
  });

  it('focuses on a mention and falls back to normal after 3 minutes without mention or reply', () => {
    const s = message(initialHeartflowState(T0), T0, 0.2, true);
    expect(s.state).toBe('focused');
    expect(message(s, T0 + FOCUS_TIMEOUT_MS - SEC, 0.2).state).toBe('focused');
    expect(message(s, T0 + FOCUS_TIMEOUT_MS, 0.2).state).toBe('normal');
  });

  it('focuses after two replies within two minutes, not after two far apart', () => {
    let s = message(initialHeartflowState(T0), T0, 0.5);
    s = updateOnReply(s, T0 + SEC);
    expect(s.state).toBe('normal');
    s = message(s, T0 + 30 * SEC, 0.5);
    s = updateOnReply(s, T0 + 60 * SEC);
    expect(s.state).toBe('focused');
    expect(s.replyStreak).toBe(2);

    let far = message(initialHeartflowState(T0), T0, 0.5);
    far = updateOnReply(far, T0 + SEC);
    far = message(far, T0 + 5 * 60 * SEC, 0.5);
    far = updateOnReply(far, T0 + 5 * 60 * SEC);
    expect(far.state).toBe('normal');
    expect(far.replyStreak).toBe(1);
  });

  it('loses focus after ten unanswered messages (the mention among them)', () => {
    let s = message(initialHeartflowState(T0), T0, 0.2, true);
    for (let i = 1; i < FOCUS_MAX_UNANSWERED - 1; i++) s = message(s, T0 + i * SEC, 0.2);
    expect(s).toMatchObject({ state: 'focused', messagesSinceReply: FOCUS_MAX_UNANSWERED - 1 });
    s = message(s, T0 + FOCUS_MAX_UNANSWERED * SEC, 0.2);
    expect(s.state).toBe('normal');
  });

  it('waits for a call after being told to be quiet, and a mention ends the wait', () => {
    let s = message(initialHeartflowState(T0), T0, 0.2, true);
    s = updateOnQuiet(s, T0 + SEC);
    expect(s).toMatchObject({ noReplyUntilCall: true, state: 'normal' });
    s = message(s, T0 + 2 * SEC, 0.9);
    expect(s.noReplyUntilCall).toBe(true);
    s = message(s, T0 + 3 * SEC, 0.1, true);
    expect(s).toMatchObject({ noReplyUntilCall: false, state: 'focused' });
  });

  it('never moves time backwards', () => {
    const s = message(initialHeartflowState(T0), T0 + 10 * SEC, 0.5);
    const earlier = message(s, T0, 0.5);
    expect(earlier.lastUpdatedAt).toBe(T0 + 10 * SEC);
    expect(earlier.willingness).toBeCloseTo(0.35, 10);
  });

  it('survives a JSON round trip and starts over from unreadable storage', () => {
    const s = updateOnReply(message(initialHeartflowState(T0), T0, 0.5, true), T0 + SEC);
    const back = storedHeartflowState(JSON.parse(JSON.stringify(s)), T0 + 2 * SEC);
    expect(back).toEqual(s);
    expect(storedHeartflowState({ state: 'sleepy' }, T0)).toEqual(initialHeartflowState(T0));
  });
});
