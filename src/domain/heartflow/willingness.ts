import { z } from 'zod';

/**
 * A chat stream's heartflow state and how messages, replies and time move it. All times are ms
 * since the epoch; every function returns a new state and never reads a clock.
 *
 * Willingness (0..1) decays exponentially with half-life `WILLINGNESS_HALF_LIFE_MS`, rises by
 * `INTEREST_GAIN × interest` per message and by `MENTION_GAIN` per mention (capped at 1), and
 * keeps only `REPLY_RETAIN` of itself after each reply.
 *
 * States:
 * - `absent`: no message for `ABSENT_AFTER_MS` (and the initial state). Any message → `normal`.
 * - `normal` → `focused`: the bot is mentioned, or it replied `FOCUS_REPLY_STREAK` times in a row
 *   with at most `FOCUS_STREAK_WINDOW_MS` between replies.
 * - `focused` → `normal`: `FOCUS_TIMEOUT_MS` without a mention or reply, `FOCUS_MAX_UNANSWERED`
 *   messages without a reply, or the bot told to be quiet (`no_reply_until_call`).
 */

export type StreamState = 'absent' | 'normal' | 'focused';

export interface HeartflowState {
  state: StreamState;
  /** Inclination to speak, 0..1, as of `lastUpdatedAt`. */
  willingness: number;
  /** When `willingness` and `state` were last brought up to date. */
  lastUpdatedAt: number;
  lastMessageAt: number | undefined;
  lastReplyAt: number | undefined;
  /** Last mention or reply that (re)started focus. */
  lastFocusAt: number | undefined;
  messagesSinceReply: number;
  /** Replies in a row, each within `FOCUS_STREAK_WINDOW_MS` of the previous one. */
  replyStreak: number;
  /**
   * Continuous replies: batches the bot answered in a row, without a batch it let pass between them
   * (others speaking among themselves) or a long silence. The planner's `max_continuous_replies`
   * rule reads it (MaiBot's "你已经连续回复了…条消息").
   */
  continuousReplies: number;
  /** Exponential moving average of message interest (weight `INTEREST_EMA_ALPHA`). */
  interest: number;
  /** The bot was told to be quiet: it speaks again only when mentioned. */
  noReplyUntilCall: boolean;
}

/** Willingness halves every 2 minutes without new input. */
export const WILLINGNESS_HALF_LIFE_MS = 2 * 60_000;
/** Willingness added per message, times the message's interest (0..1). */
export const INTEREST_GAIN = 0.35;
/** Willingness added by a mention of the bot. */
export const MENTION_GAIN = 0.5;
/** Share of willingness kept after the bot replies. */
export const REPLY_RETAIN = 0.35;
/** Weight of the newest message in the interest average. */
export const INTEREST_EMA_ALPHA = 0.3;
/** Silence after which the stream is `absent`: 30 minutes. */
export const ABSENT_AFTER_MS = 30 * 60_000;
/** Focus ends after 3 minutes without a mention or reply. */
export const FOCUS_TIMEOUT_MS = 3 * 60_000;
/** Focus ends after this many messages without a reply. */
export const FOCUS_MAX_UNANSWERED = 10;
/** Replies in a row that make the stream `focused`. */
export const FOCUS_REPLY_STREAK = 2;
/** Longest gap between two replies of one streak: 2 minutes. */
export const FOCUS_STREAK_WINDOW_MS = 2 * 60_000;

/** What `updateOnMessage` needs of a message. */
export interface MessageSignal {
  mentioned: boolean;
  /** `interestOf(...)`, 0..1. */
  interest: number;
  /** ms since the epoch. */
  at: number;
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** The state of a stream that has seen nothing yet. */
export function initialHeartflowState(now: number): HeartflowState {
  return {
    state: 'absent',
    willingness: 0,
    lastUpdatedAt: now,
    lastMessageAt: undefined,
    lastReplyAt: undefined,
    lastFocusAt: undefined,
    messagesSinceReply: 0,
    replyStreak: 0,
    continuousReplies: 0,
    interest: 0,
    noReplyUntilCall: false,
  };
}

const Time = z.number().finite().optional();
const StoredState = z.object({
  state: z.enum(['absent', 'normal', 'focused']),
  willingness: z.number().min(0).max(1),
  lastUpdatedAt: z.number().finite(),
  lastMessageAt: Time,
  lastReplyAt: Time,
  lastFocusAt: Time,
  messagesSinceReply: z.number().int().min(0),
  replyStreak: z.number().int().min(0).default(0),
  continuousReplies: z.number().int().min(0).default(0),
  interest: z.number().min(0).max(1),
  noReplyUntilCall: z.boolean().default(false),
});

/**
 * A state read back from storage (JSON drops `undefined` keys); anything unreadable starts over
 * as `initialHeartflowState(now)`.
 */
export function storedHeartflowState(raw: unknown, now: number): HeartflowState {
  const parsed = StoredState.safeParse(raw);
  if (!parsed.success) return initialHeartflowState(now);
  const d = parsed.data;
  return { ...d, lastMessageAt: d.lastMessageAt, lastReplyAt: d.lastReplyAt, lastFocusAt: d.lastFocusAt };
}

/** `willingness × 0.5^(elapsed / half-life)`; time going backwards (clock skew) decays nothing. */
export function decayWillingness(willingness: number, elapsedMs: number): number {
  return clamp01(willingness * Math.pow(0.5, Math.max(0, elapsedMs) / WILLINGNESS_HALF_LIFE_MS));
}

/**
 * The state as of `now` with nothing new happening: willingness decayed, long silence → `absent`,
 * stale focus → `normal`. Status reads use this; the update functions start with it.
 */
export function stateAt(state: HeartflowState, now: number): HeartflowState {
  const at = Math.max(now, state.lastUpdatedAt);
  const next: HeartflowState = {
    ...state,
    willingness: decayWillingness(state.willingness, at - state.lastUpdatedAt),
    lastUpdatedAt: at,
  };
  if (state.lastMessageAt === undefined || at - state.lastMessageAt >= ABSENT_AFTER_MS) {
    next.state = 'absent';
    next.replyStreak = 0;
    next.continuousReplies = 0;
  } else if (state.state === 'focused' && at - (state.lastFocusAt ?? 0) >= FOCUS_TIMEOUT_MS) {
    next.state = 'normal';
  }
  return next;
}

/** After one inbound message: decay to its time, then add its interest (and mention). */
export function updateOnMessage(state: HeartflowState, msg: MessageSignal): HeartflowState {
  const s = stateAt(state, msg.at);
  const interest = clamp01(msg.interest);
  const next: HeartflowState = {
    ...s,
    willingness: clamp01(s.willingness + INTEREST_GAIN * interest + (msg.mentioned ? MENTION_GAIN : 0)),
    lastMessageAt: s.lastUpdatedAt,
    messagesSinceReply: s.messagesSinceReply + 1,
    interest:
      state.lastMessageAt === undefined
        ? interest
        : INTEREST_EMA_ALPHA * interest + (1 - INTEREST_EMA_ALPHA) * s.interest,
  };
  if (msg.mentioned) {
    next.state = 'focused';
    next.lastFocusAt = s.lastUpdatedAt;
    next.noReplyUntilCall = false;
  } else if (s.state === 'absent') {
    next.state = 'normal';
  } else if (s.state === 'focused' && next.messagesSinceReply >= FOCUS_MAX_UNANSWERED) {
    next.state = 'normal';
  }
  return next;
}

/** After the bot replied (text, emoji or a plugin action) at `at`. */
export function updateOnReply(state: HeartflowState, at: number): HeartflowState {
  const s = stateAt(state, at);
  const inStreak = s.lastReplyAt !== undefined && s.lastUpdatedAt - s.lastReplyAt <= FOCUS_STREAK_WINDOW_MS;
  const replyStreak = inStreak ? s.replyStreak + 1 : 1;
  const focused = s.state === 'focused' || replyStreak >= FOCUS_REPLY_STREAK;
  return {
    ...s,
    state: focused ? 'focused' : 'normal',
    lastFocusAt: focused ? s.lastUpdatedAt : s.lastFocusAt,
    willingness: s.willingness * REPLY_RETAIN,
    lastReplyAt: s.lastUpdatedAt,
    messagesSinceReply: 0,
    replyStreak,
    continuousReplies: s.continuousReplies + 1,
    noReplyUntilCall: false,
  };
}

/**
 * After the bot let a batch pass (`no_reply`): the others spoke without it, so its run of
 * continuous replies is over.
 */
export function updateOnPass(state: HeartflowState): HeartflowState {
  return state.continuousReplies === 0 ? state : { ...state, continuousReplies: 0 };
}

/** After the bot was told to be quiet: it waits for a mention and drops focus. */
export function updateOnQuiet(state: HeartflowState, at: number): HeartflowState {
  const s = stateAt(state, at);
  return {
    ...s,
    noReplyUntilCall: true,
    state: s.state === 'focused' ? 'normal' : s.state,
    replyStreak: 0,
    continuousReplies: 0,
  };
}
