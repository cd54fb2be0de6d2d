import {
  applyHeartflowConfigPatch,
  effectiveTalkValue,
  HeartflowConfig,
  HeartflowConfigPatch,
  inQuietHours,
  localMinuteOfDay,
  storedHeartflowConfig,
  utcOffsetMinutes,
} from '../../src/domain/heartflow/config';
import { plan } from '../../src/domain/heartflow/planner';
import { initialHeartflowState } from '../../src/domain/heartflow/willingness';

const at = (hhmm: string): Date => new Date(`2025-01-15T${hhmm}:00Z`);

describe('HeartflowConfig', () => {
  it('fills in the documented defaults', () => {
    expect(HeartflowConfig.parse({})).toEqual({
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
    });
  });

  it('rejects out-of-range values, bad clock times, empty windows and unknown keys', () => {
    expect(HeartflowConfig.safeParse({ talk_value: 1.5 }).success).toBe(false);
    expect(HeartflowConfig.safeParse({ quiet_hours: [{ start: '25:00', end: '07:00' }] }).success).toBe(
      false,
    );
    expect(HeartflowConfig.safeParse({ quiet_hours: [{ start: '07:00', end: '07:00' }] }).success).toBe(
      false,
    );
    expect(HeartflowConfig.safeParse({ surprise: true }).success).toBe(false);
    expect(HeartflowConfig.safeParse({ quiet_hours: [{ start: '00:00', end: '24:00' }] }).success).toBe(true);
  });

  it('accepts the upstream reference example as a patch and keeps what it does not name', () => {
    const stored = HeartflowConfig.parse({ talk_value: 0.8 });
    const patch = HeartflowConfigPatch.parse({
      emotion_sensitivity: 0.8,
      memory_strength: 0.7,
      response_style: 'friendly',
      enable_auto_emoji: true,
    });
    const next = applyHeartflowConfigPatch(stored, patch);
    expect(next).toMatchObject({ talk_value: 0.8, emotion_sensitivity: 0.8, memory_strength: 0.7 });
  });

  it('reads an unreadable stored config as the defaults', () => {
    expect(storedHeartflowConfig({ talk_value: 'loud' })).toEqual(HeartflowConfig.parse({}));
    expect(storedHeartflowConfig(null).talk_value).toBe(0.5);
  });
});

describe('effectiveTalkValue', () => {
  const config = HeartflowConfig.parse({
    talk_value: 0.5,
    talk_value_rules: [
      { start: '23:00', end: '07:00', talk_value: 0.1 },
      { start: '12:00', end: '14:00', chat_type: 'private', talk_value: 0.9 },
      { start: '12:00', end: '13:00', talk_value: 0.3 },
    ],
  });

  it('uses the default outside every rule', () => {
    expect(effectiveTalkValue(config, at('10:00'))).toBe(0.5);
  });

  it('applies a window that wraps past midnight, start inclusive and end exclusive', () => {
    expect(effectiveTalkValue(config, at('23:00'))).toBe(0.1);
    expect(effectiveTalkValue(config, at('03:30'))).toBe(0.1);
    expect(effectiveTalkValue(config, at('07:00'))).toBe(0.5);
  });

  it('applies a chat-type rule only to that chat type, first match winning', () => {
    expect(effectiveTalkValue(config, at('12:30'), { chatType: 'private' })).toBe(0.9);
    expect(effectiveTalkValue(config, at('12:30'), { chatType: 'group' })).toBe(0.3);
    expect(effectiveTalkValue(config, at('12:30'))).toBe(0.3);
  });

  it('reads windows in local time given a UTC offset', () => {
    // 15:30 UTC is 23:30 in UTC+8.
    expect(effectiveTalkValue(config, at('15:30'), { utcOffsetMinutes: 480 })).toBe(0.1);
    expect(localMinuteOfDay(at('15:30'), 480)).toBe(23 * 60 + 30);
    expect(localMinuteOfDay(at('00:10'), -60)).toBe(23 * 60 + 10);
  });
});

describe('inQuietHours', () => {
  const config = HeartflowConfig.parse({ quiet_hours: [{ start: '01:00', end: '08:00' }] });

  it('is true inside a quiet window and false outside', () => {
    expect(inQuietHours(config, at('01:00'))).toBe(true);
    expect(inQuietHours(config, at('07:59'))).toBe(true);
    expect(inQuietHours(config, at('08:00'))).toBe(false);
    // 01:30 UTC is 23:30 in UTC-2.
    expect(inQuietHours(config, at('01:30').getTime(), -120)).toBe(false);
  });
});

describe('time zones (quiet hours and talk-value rules in the tenant zone)', () => {
  it('gives the UTC offset of a zone at an instant, daylight saving included', () => {
    expect(utcOffsetMinutes('UTC', Date.UTC(2026, 0, 1))).toBe(0);
    expect(utcOffsetMinutes('Asia/Shanghai', Date.UTC(2026, 0, 1, 16, 30))).toBe(480);
    expect(utcOffsetMinutes('Europe/Berlin', Date.UTC(2026, 0, 15, 12))).toBe(60);
    expect(utcOffsetMinutes('Europe/Berlin', Date.UTC(2026, 6, 15, 12))).toBe(120);
    expect(utcOffsetMinutes('America/New_York', Date.UTC(2026, 6, 15, 12))).toBe(-240);
    expect(utcOffsetMinutes('Nowhere/Land', Date.UTC(2026, 0, 1))).toBe(0);
  });

  it('has the planner keep quiet in quiet hours of the zone, but answer a mention', () => {
    const config = HeartflowConfig.parse({
      talk_value: 1,
      timezone: 'Asia/Shanghai',
      quiet_hours: [{ start: '23:00', end: '07:00' }],
    });
    const state = { ...initialHeartflowState(0), willingness: 1, state: 'normal' as const };
    const at = (now: number, mentioned: boolean) =>
      plan({
        state,
        config,
        messages: [{ id: 'm', text: '大家在聊什么呢', mentioned }],
        now,
        rng: () => 0,
        utcOffsetMinutes: utcOffsetMinutes(config.timezone, now),
      });
    const midnightShanghai = Date.UTC(2026, 2, 1, 16, 30); // 00:30 local
    const noonShanghai = Date.UTC(2026, 2, 2, 4, 0); // 12:00 local, 04:00 UTC (quiet in UTC)
    expect(at(midnightShanghai, false)).toMatchObject({ action: 'no_reply', reason: 'quiet_hours' });
    expect(at(midnightShanghai, true)).toMatchObject({ action: 'reply', reason: 'mentioned' });
    expect(at(noonShanghai, false)).toMatchObject({ action: 'reply', reason: 'willing' });
  });
});
