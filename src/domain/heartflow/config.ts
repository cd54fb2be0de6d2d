import { z } from 'zod';

/**
 * Per-chat-stream heartflow settings (`GET|PUT /heartflow/config/{chat_stream_id}`) and the pure
 * helpers that read them against a clock: the talk value in force and quiet hours.
 */

/** Whether `Intl` knows the time zone (`UTC`, `Asia/Shanghai`, …). */
export function isTimeZone(zone: string): boolean {
  return offsetFormat(zone) !== undefined;
}

/**
 * One formatter per time zone, made once: constructing an `Intl.DateTimeFormat` costs far more
 * than formatting with it, and the heartflow asks for a stream's offset on every pass. Only zones
 * `Intl` accepted are kept, and at most `MAX_OFFSET_FORMATS` of them (`Intl` also accepts every
 * upper/lower-case spelling of a zone, so the set of valid keys is not small).
 */
const offsetFormats = new Map<string, Intl.DateTimeFormat>();
const MAX_OFFSET_FORMATS = 1000;

function offsetFormat(zone: string): Intl.DateTimeFormat | undefined {
  let format = offsetFormats.get(zone);
  if (format) return format;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
  } catch {
    return undefined;
  }
  if (offsetFormats.size >= MAX_OFFSET_FORMATS) offsetFormats.clear();
  offsetFormats.set(zone, format);
  return format;
}

/**
 * Minutes east of UTC of a time zone at an instant (UTC+8 → 480), daylight saving included; 0 for
 * a zone `Intl` does not know.
 */
export function utcOffsetMinutes(zone: string, at: number): number {
  const format = offsetFormat(zone);
  if (!format) return 0;
  const parts = format.formatToParts(at);
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const local = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'));
  return Math.round((local - Math.floor(at / 60_000) * 60_000) / 60_000);
}

/** `HH:MM` on a 24-hour clock; `24:00` is allowed as the end of a window. */
const CLOCK_TIME = /^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/;
const ClockTime = z.string().regex(CLOCK_TIME, 'must be HH:MM (00:00–24:00)');
const Ratio = z.number().min(0).max(1);

function nonEmptyWindow(w: { start: string; end: string }): boolean {
  return w.start !== '24:00' && minutesOf(w.start) !== minutesOf(w.end);
}
const NON_EMPTY_WINDOW = {
  message: 'start must be before 24:00 and differ from end (00:00–24:00 = all day)',
};

/**
 * A daily time window in the stream's local time. `start` is inclusive, `end` exclusive; a window
 * whose end is before its start wraps past midnight (`23:00`–`07:00`).
 */
export const TimeWindow = z
  .strictObject({ start: ClockTime, end: ClockTime })
  .refine(nonEmptyWindow, NON_EMPTY_WINDOW);
export type TimeWindow = z.infer<typeof TimeWindow>;

/** A talk value that replaces the default one in a time window, optionally for one kind of chat only. */
export const TalkValueRule = z
  .strictObject({
    start: ClockTime,
    end: ClockTime,
    /** Applies to group or private chats only; absent = both. */
    chat_type: z.enum(['group', 'private']).optional(),
    talk_value: Ratio,
  })
  .refine(nonEmptyWindow, NON_EMPTY_WINDOW);
export type TalkValueRule = z.infer<typeof TalkValueRule>;

/** The heartflow settings, each optional: the `heartflow` config category's keys. */
export const HEARTFLOW_FIELDS = {
  /** How talkative the bot is unprompted, 0 (never) to 1. Default 0.5. */
  talk_value: Ratio,
  /** Talk values by time window / chat type; the first matching rule wins. Default none. */
  talk_value_rules: z.array(TalkValueRule).max(24),
  /** A mention of the bot is always answered. Default true. */
  mentioned_bot_reply: z.boolean(),
  /** How strongly emotional messages move the bot (interest, auto emoji), 0..1. Default 0.5. */
  emotion_sensitivity: Ratio,
  /** How much retrieved memory goes into a reply prompt, 0 (none) to 1. Default 0.5. */
  memory_strength: Ratio,
  /** Free-form reply style hint for the prompt (`friendly`, `casual`, …). Default `friendly`. */
  response_style: z.string().trim().min(1).max(200),
  /** The planner may answer low-effort messages with an emoji instead of text. Default true. */
  enable_auto_emoji: z.boolean(),
  /** Daily windows in which the bot speaks only when mentioned. Default none. */
  quiet_hours: z.array(TimeWindow).max(24),
  /**
   * Batches the bot may answer in a row before it lets the others speak once (it stays silent for
   * one batch unless mentioned); the reply prompt says so from the second. 0 = no limit. Default 3.
   */
  max_continuous_replies: z.number().int().min(0).max(100),
  /**
   * IANA time zone the clock times above are read in (`Asia/Shanghai`). Default `UTC`; set it at
   * tenant scope for the tenant's zone.
   */
  timezone: z.string().min(1).max(64).refine(isTimeZone, 'must be an IANA time zone such as Asia/Shanghai'),
};

export const HEARTFLOW_CONFIG_DEFAULTS = {
  talk_value: 0.5,
  talk_value_rules: [],
  mentioned_bot_reply: true,
  emotion_sensitivity: 0.5,
  memory_strength: 0.5,
  response_style: 'friendly',
  enable_auto_emoji: true,
  quiet_hours: [],
  max_continuous_replies: 3,
  timezone: 'UTC',
} as const;

/** A stream's heartflow config with every default filled in. */
export const HeartflowConfig = z.strictObject({
  talk_value: HEARTFLOW_FIELDS.talk_value.default(HEARTFLOW_CONFIG_DEFAULTS.talk_value),
  talk_value_rules: HEARTFLOW_FIELDS.talk_value_rules.default([]),
  mentioned_bot_reply: HEARTFLOW_FIELDS.mentioned_bot_reply.default(
    HEARTFLOW_CONFIG_DEFAULTS.mentioned_bot_reply,
  ),
  emotion_sensitivity: HEARTFLOW_FIELDS.emotion_sensitivity.default(
    HEARTFLOW_CONFIG_DEFAULTS.emotion_sensitivity,
  ),
  memory_strength: HEARTFLOW_FIELDS.memory_strength.default(HEARTFLOW_CONFIG_DEFAULTS.memory_strength),
  response_style: HEARTFLOW_FIELDS.response_style.default(HEARTFLOW_CONFIG_DEFAULTS.response_style),
  enable_auto_emoji: HEARTFLOW_FIELDS.enable_auto_emoji.default(HEARTFLOW_CONFIG_DEFAULTS.enable_auto_emoji),
  quiet_hours: HEARTFLOW_FIELDS.quiet_hours.default([]),
  max_continuous_replies: HEARTFLOW_FIELDS.max_continuous_replies.default(
    HEARTFLOW_CONFIG_DEFAULTS.max_continuous_replies,
  ),
  timezone: HEARTFLOW_FIELDS.timezone.default(HEARTFLOW_CONFIG_DEFAULTS.timezone),
});
export type HeartflowConfig = z.infer<typeof HeartflowConfig>;

/** Body of `PUT /heartflow/config/{id}`: keys given replace the stored ones, others stay. */
export const HeartflowConfigPatch = z.strictObject({
  talk_value: HEARTFLOW_FIELDS.talk_value.optional(),
  talk_value_rules: HEARTFLOW_FIELDS.talk_value_rules.optional(),
  mentioned_bot_reply: HEARTFLOW_FIELDS.mentioned_bot_reply.optional(),
  emotion_sensitivity: HEARTFLOW_FIELDS.emotion_sensitivity.optional(),
  memory_strength: HEARTFLOW_FIELDS.memory_strength.optional(),
  response_style: HEARTFLOW_FIELDS.response_style.optional(),
  enable_auto_emoji: HEARTFLOW_FIELDS.enable_auto_emoji.optional(),
  quiet_hours: HEARTFLOW_FIELDS.quiet_hours.optional(),
  max_continuous_replies: HEARTFLOW_FIELDS.max_continuous_replies.optional(),
  timezone: HEARTFLOW_FIELDS.timezone.optional(),
});
export type HeartflowConfigPatch = z.infer<typeof HeartflowConfigPatch>;

/** A stored config read back; anything unreadable counts as the defaults. */
export function storedHeartflowConfig(raw: unknown): HeartflowConfig {
  const parsed = HeartflowConfig.safeParse(raw ?? {});
  return parsed.success ? parsed.data : HeartflowConfig.parse({});
}

export function applyHeartflowConfigPatch(
  stored: HeartflowConfig,
  patch: HeartflowConfigPatch,
): HeartflowConfig {
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  return HeartflowConfig.parse({ ...stored, ...given });
}

/** Where the stream's local clock sits relative to UTC, and which kind of chat it is. */
export interface LocalTimeOptions {
  /** Minutes east of UTC (UTC+8 → 480). Default 0. */
  utcOffsetMinutes?: number;
  chatType?: 'group' | 'private';
}

const MINUTES_PER_DAY = 24 * 60;

function minutesOf(clock: string): number {
  const [h, m] = clock.split(':');
  return Number(h) * 60 + Number(m);
}

/** Minute of the local day (0..1439) at `now`. */
export function localMinuteOfDay(now: Date | number, utcOffsetMinutes = 0): number {
  const ms = typeof now === 'number' ? now : now.getTime();
  const minutes = Math.floor(ms / 60_000) + Math.round(utcOffsetMinutes);
  return ((minutes % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
}

/** Whether a local minute of the day falls in a window (start inclusive, end exclusive, may wrap). */
export function inWindow(window: { start: string; end: string }, minuteOfDay: number): boolean {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  return start < end ? minuteOfDay >= start && minuteOfDay < end : minuteOfDay >= start || minuteOfDay < end;
}

/**
 * The talk value in force at `now`: the first matching rule's, else the stream's default. A rule
 * for one chat type applies only when `options.chatType` names that type.
 */
export function effectiveTalkValue(
  config: HeartflowConfig,
  now: Date | number,
  options: LocalTimeOptions = {},
): number {
  const minute = localMinuteOfDay(now, options.utcOffsetMinutes);
  const rule = config.talk_value_rules.find(
    (r) => (r.chat_type === undefined || r.chat_type === options.chatType) && inWindow(r, minute),
  );
  return rule?.talk_value ?? config.talk_value;
}

/** Whether `now` is inside one of the stream's quiet hours. */
export function inQuietHours(config: HeartflowConfig, now: Date | number, utcOffsetMinutes = 0): boolean {
  const minute = localMinuteOfDay(now, utcOffsetMinutes);
  return config.quiet_hours.some((w) => inWindow(w, minute));
}
