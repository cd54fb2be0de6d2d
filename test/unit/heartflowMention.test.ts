import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type BotIdentity, detectMention } from '../../src/domain/heartflow/mention';

const bot: BotIdentity = { accountId: '1145141919', nickname: '麦麦', aliases: ['MaiBot', 'mai'] };

function mentioned(text: string, flag?: boolean): boolean {
  return detectMention(text, bot, flag).mentioned;
}

interface MaimFixture {
  message_segment: { data: { type: string; data: unknown }[] };
}

/** The text segments of the maim fixture, joined as an adapter's plain text would read. */
function fixtureText(name: string): string {
  const raw = readFileSync(join(__dirname, '../fixtures/maim', name), 'utf8');
  const msg = JSON.parse(raw) as MaimFixture;
  return msg.message_segment.data
    .filter((s) => s.type === 'text')
    .map((s) => String(s.data))
    .join('');
}

describe('detectMention', () => {
  it('trusts the adapter flag', () => {
    expect(detectMention('随便聊聊', bot, true)).toEqual({ mentioned: true, via: 'adapter' });
  });

  it('finds the @<nick:account> mention in the maim group fixture', () => {
    const text = fixtureText('group-message.json');
    expect(text).toContain('@<麦麦:1145141919>');
    expect(detectMention(text, bot).mentioned).toBe(true);
    // The fixture also quotes the bot: either rule is enough.
    expect(['reply', 'at_account']).toContain(detectMention(text, bot).via);
  });

  it('recognises @<nick:account> naming the bot account even under another nickname', () => {
    expect(detectMention('@<小麦:1145141919> 在吗', bot)).toEqual({ mentioned: true, via: 'at_account' });
  });

  it('counts a quoted reply to one of the bot messages as a mention', () => {
    expect(detectMention('[回复<麦麦:1145141919>：早上好]，说：早', bot)).toEqual({
      mentioned: true,
      via: 'reply',
    });
  });

  it('ignores the bot name inside a quote of someone else', () => {
    expect(mentioned('[回复<小明:2345678901>：麦麦今天好可爱]，说：确实')).toBe(false);
  });

  it('recognises a OneBot CQ at code of the bot account', () => {
    expect(detectMention('[CQ:reply,id=1][CQ:at,qq=1145141919] 今天吃什么', bot).via).toBe('at_account');
    expect(mentioned('[CQ:at,qq=2345678901] 今天吃什么')).toBe(false);
  });

  it('recognises @nickname, @alias and @account at a token boundary', () => {
    expect(detectMention('@麦麦 在吗', bot).via).toBe('at_name');
    expect(detectMention('@MaiBot hi', bot).via).toBe('at_name');
    expect(detectMention('hi @mai, how are you', bot).via).toBe('at_name');
    expect(detectMention('＠麦麦 你好', bot).via).toBe('at_name');
    expect(detectMention('@1145141919', bot).via).toBe('at_account');
  });

  it('finds the bot name in Chinese text without spaces', () => {
    expect(detectMention('麦麦你好', bot)).toEqual({ mentioned: true, via: 'name' });
    expect(mentioned('今天麦麦怎么不说话')).toBe(true);
  });

  it('matches ASCII names only as whole words, case-insensitively', () => {
    expect(mentioned('hey MAIBOT!')).toBe(true);
    expect(mentioned('maibotx is a different thing')).toBe(false);
    expect(mentioned('please mail me')).toBe(false);
  });

  it('does not take other people @ mentions for the bot', () => {
    expect(mentioned('@小明 你好')).toBe(false);
    expect(mentioned('@<小明:2345678901> 你好')).toBe(false);
    expect(mentioned('@<麦麦:999> hi')).toBe(false);
    expect(mentioned('@麦麦子 你好')).toBe(false);
    expect(mentioned('@全体成员 开会了')).toBe(false);
  });

  it('ignores names inside e-mail addresses and links', () => {
    expect(mentioned('write to bob@mai.com')).toBe(false);
    expect(mentioned('see https://example.com/mai/docs')).toBe(false);
  });

  it('needs two characters for a bare name but accepts a short @name', () => {
    const short: BotIdentity = { accountId: '1', nickname: '麦' };
    expect(detectMention('我想吃麦当劳', short).mentioned).toBe(false);
    expect(detectMention('@麦 你好', short).mentioned).toBe(true);
  });

  it('works without a nickname or aliases', () => {
    expect(detectMention('@<x:42> hi', { accountId: '42' }).mentioned).toBe(true);
    expect(detectMention('hello there', { accountId: '42' }).mentioned).toBe(false);
  });
});
