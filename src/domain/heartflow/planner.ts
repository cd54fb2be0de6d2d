import type { Rng } from '../random';
import { effectiveTalkValue, type HeartflowConfig, inQuietHours } from './config';
import { detectEmotion, type Emotion, isLowEffort } from './emotion';
import {
  type HeartflowState,
  type StreamState,
  updateOnPass,
  updateOnQuiet,
  updateOnReply,
} from './willingness';

/**
 * The planner step: given a stream's state (already updated with every message of the batch) and
 * the batch, choose one action. Pure; the only randomness is `rng`, drawn a fixed number of times,
 * so the same seed and input give the same decision.
 *
 * Order of rules:
 * 1. The newest explicit signal in the batch decides: a plugin command (`/name`) → that action; a
 *    quiet command ("闭嘴", "别说话", "shut up", …) aimed at the bot → `no_reply_until_call`; a
 *    mention (every message of a private chat counts as one) with `mentioned_bot_reply` → `reply`.
 * 2. Waiting for a call (`noReplyUntilCall`) → `no_reply`.
 * 3. Quiet hours → `no_reply`.
 * 4. The bot already answered `max_continuous_replies` batches in a row (0 = no limit) → `no_reply`
 *    (MaiBot: "你已经连续回复了…条消息，你回复的有点多了"): it lets the others speak once before it
 *    talks unprompted again; a mention is still answered (rule 1).
 * 5. Otherwise reply with probability `willingness × talk_value × STATE_FACTOR[state]`; a reply to
 *    low-effort or emotional chatter becomes `emoji` with probability `emojiChance(sensitivity)`
 *    when `enable_auto_emoji`. Not replying after `UNANSWERED_LIMIT` unanswered messages in a row
 *    → `no_reply_until_call`.
 */

export const BUILTIN_ACTIONS = ['reply', 'no_reply', 'no_reply_until_call', 'emoji'] as const;
export type BuiltinAction = (typeof BUILTIN_ACTIONS)[number];
/** A built-in action or the name of a plugin action offered in `pluginActions`. */
export type HeartflowAction = BuiltinAction | (string & Record<never, never>);

export type DecisionReason =
  | 'empty_batch'
  | 'plugin_command'
  /** The planner LLM chose a plugin action it was offered (`actions.ts`). */
  | 'planner_llm'
  | 'quiet_command'
  | 'mentioned'
  | 'waiting_for_call'
  | 'quiet_hours'
  | 'willing'
  | 'not_willing'
  | 'unanswered_streak'
  | 'continuous_replies';

/** Reply probability multiplier by state: a focused bot follows the conversation more eagerly. */
export const STATE_FACTOR: Readonly<Record<StreamState, number>> = { absent: 0.5, normal: 1, focused: 1.5 };
/** Unanswered messages in a row after which a declined reply becomes `no_reply_until_call`. */
export const UNANSWERED_LIMIT = 30;
/** A quiet command counts as aimed at the bot if the bot spoke within this window (10 minutes). */
export const QUIET_COMMAND_WINDOW_MS = 10 * 60_000;
/** Messages longer than this are not taken for low-effort chatter an emoji could answer. */
export const EMOJI_MAX_CHARS = 12;

/** Chance that a reply to low-effort chatter is an emoji: 0.3 at sensitivity 0, 0.9 at 1. */
export function emojiChance(emotionSensitivity: number): number {
  return 0.3 + 0.6 * Math.min(1, Math.max(0, emotionSensitivity));
}

const QUIET_COMMAND =
  /闭嘴|别说话|不要说话|别讲话|不要讲话|别吵|安静点|安静一点|安静些|住口|少说两句|别说了|shut ?up|be quiet|stop talking|\bstfu\b/;
const NOT_QUIET = /不用闭嘴|别闭嘴|不要闭嘴|没让你闭嘴/;

/** Whether a text tells someone to be quiet. */
export function isQuietCommand(text: string): boolean {
  const t = text.normalize('NFKC').toLowerCase();
  return QUIET_COMMAND.test(t) && !NOT_QUIET.test(t);
}

/** One message of the batch being planned (oldest first). */
export interface PlannedMessage {
  id: string;
  text: string;
  /** `detectMention(...).mentioned` */
  mentioned: boolean;
}

export interface PlanInput {
  /** The stream's state after `updateOnMessage` for every message of the batch. */
  state: HeartflowState;
  config: HeartflowConfig;
  /** The coalesced batch, oldest first. */
  messages: readonly PlannedMessage[];
  /** The batch mentions the bot; default: any message says `mentioned`. */
  mentioned?: boolean;
  /** ms since the epoch. */
  now: number;
  rng: Rng;
  /** Private chats are answered like mentions (as MaiBot does). Default `group`. */
  chatType?: 'group' | 'private';
  /** The stream's local time for talk-value rules and quiet hours. Default 0 (UTC). */
  utcOffsetMinutes?: number;
  /** Plugin actions on offer, invoked as `/name` (or `!name`) at the start of a message. */
  pluginActions?: readonly string[];
}

export interface HeartflowDecision {
  action: HeartflowAction;
  reason: DecisionReason;
  /** The probability the planner rolled against (1 for explicit signals, 0 when suppressed). */
  replyProbability: number;
  /** The message the action answers; undefined for an empty batch. */
  targetMessageId: string | undefined;
  /** The target's emotion, for picking an emoji or colouring the reply. */
  emotion: Emotion | undefined;
}

const BUILTIN = new Set<string>(BUILTIN_ACTIONS);

function pluginCommand(text: string, actions: readonly string[]): string | undefined {
  const m = /^\s*[/!]([\p{L}\p{N}_.:-]+)(?:\s|$)/u.exec(text.normalize('NFKC'));
  const name = m?.[1]?.toLowerCase();
  if (name === undefined) return undefined;
  return actions.find((a) => !BUILTIN.has(a) && a.toLowerCase() === name);
}

function decision(
  action: HeartflowAction,
  reason: DecisionReason,
  replyProbability: number,
  target: PlannedMessage | undefined,
): HeartflowDecision {
  return {
    action,
    reason,
    replyProbability,
    targetMessageId: target?.id,
    emotion: target === undefined ? undefined : detectEmotion(target.text),
  };
}

/** Chooses the action for a batch (see the rules above). */
export function plan(input: PlanInput): HeartflowDecision {
  const { state, config, messages, now } = input;
  const last = messages[messages.length - 1];
  if (last === undefined) return decision('no_reply', 'empty_batch', 0, undefined);
  const privateChat = input.chatType === 'private';
  const botSpokeRecently =
    state.lastReplyAt !== undefined && now - state.lastReplyAt <= QUIET_COMMAND_WINDOW_MS;

  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m === undefined) continue;
    const command = pluginCommand(m.text, input.pluginActions ?? []);
    if (command !== undefined) return decision(command, 'plugin_command', 1, m);
    const calledBot = m.mentioned || privateChat;
    if (isQuietCommand(m.text) && (calledBot || botSpokeRecently)) {
      return decision('no_reply_until_call', 'quiet_command', 0, m);
    }
    if (calledBot && config.mentioned_bot_reply) return decision('reply', 'mentioned', 1, m);
  }
  const batchMentioned = input.mentioned ?? messages.some((m) => m.mentioned);
  if (batchMentioned && config.mentioned_bot_reply) {
    const target = [...messages].reverse().find((m) => m.mentioned) ?? last;
    return decision('reply', 'mentioned', 1, target);
  }

  if (state.noReplyUntilCall) return decision('no_reply', 'waiting_for_call', 0, last);
  if (inQuietHours(config, now, input.utcOffsetMinutes)) return decision('no_reply', 'quiet_hours', 0, last);
  if (continuousLimitReached(state, config)) return decision('no_reply', 'continuous_replies', 0, last);

  const talkValue = effectiveTalkValue(config, now, {
    utcOffsetMinutes: input.utcOffsetMinutes,
    chatType: input.chatType ?? 'group',
  });
  const p = Math.min(1, Math.max(0, state.willingness * talkValue * STATE_FACTOR[state.state]));
  if (input.rng() < p) {
    const emojiFits =
      isLowEffort(last.text) ||
      ([...last.text].length <= EMOJI_MAX_CHARS && detectEmotion(last.text) !== undefined);
    if (config.enable_auto_emoji && emojiFits && input.rng() < emojiChance(config.emotion_sensitivity)) {
      return decision('emoji', 'willing', p, last);
    }
    return decision('reply', 'willing', p, last);
  }
  if (state.messagesSinceReply >= UNANSWERED_LIMIT) {
    return decision('no_reply_until_call', 'unanswered_streak', p, last);
  }
  return decision('no_reply', 'not_willing', p, last);
}

/** Whether the bot has answered `max_continuous_replies` batches in a row (never when it is 0). */
export function continuousLimitReached(
  state: Pick<HeartflowState, 'continuousReplies'>,
  config: Pick<HeartflowConfig, 'max_continuous_replies'>,
): boolean {
  return config.max_continuous_replies > 0 && state.continuousReplies >= config.max_continuous_replies;
}

/**
 * The state after carrying out a decision at `at`: replies damp willingness and count as
 * continuous replies, letting a batch pass ends them, quiet waits for a call.
 */
export function applyDecision(state: HeartflowState, d: HeartflowDecision, at: number): HeartflowState {
  if (d.action === 'no_reply') return updateOnPass(state);
  if (d.action === 'no_reply_until_call') return updateOnQuiet(state, at);
  return updateOnReply(state, at);
}
