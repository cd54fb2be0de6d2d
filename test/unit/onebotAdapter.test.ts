import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { oneBotToInbound, parseCqString } from '../../src/adapters/onebot';
import {
  type AdapterOutcome,
  chatStreamIdFor,
  type InboundMessage,
  toSendInput,
} from '../../src/adapters/types';
import { ValidationError } from '../../src/errors';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(__dirname, '../fixtures/onebot-v11', name), 'utf8')) as Record<
    string,
    unknown
  >;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

function message(outcome: AdapterOutcome): InboundMessage {
  if (outcome.ignored) throw new Error(`expected a message, got ignored (${outcome.reason})`);
  return outcome;
}

describe('OneBot v11 adapter', () => {
  it('normalizes a group message that mentions the bot, with a reply and a sticker', () => {
    const msg = message(oneBotToInbound(fixture('group-message-at-bot.json')));
    expect(msg).toMatchObject({
      platform: 'qq',
      chatType: 'group',
      chatStreamId: 'qq-g-123456789',
      clientMessageId: '1873945021',
      text: '今天吃什么[表情包]',
      sender: { userId: '2345678901', nickname: '小明', cardname: '明明' },
      groupId: '123456789',
      replyTo: '1873945000',
      mentioned: true,
    });
    expect(msg.segments.map((s) => s.type)).toEqual(['reply', 'at', 'text', 'image']);
    expect(msg.segments[3]!.data).toMatchObject({
      file: 'a.image',
      sub_type: 1,
      url: 'https://multimedia.example.invalid/a.image',
    });
  });

  it('sees no mention in a plain group message and treats an empty card as absent', () => {
    const msg = message(oneBotToInbound(fixture('group-message-plain.json')));
    expect(msg).toMatchObject({
      chatType: 'group',
      chatStreamId: 'qq-g-123456789',
      clientMessageId: '1873945099',
      text: '有人周末一起去爬山吗',
      mentioned: false,
      replyTo: undefined,
      sender: { userId: '3456789012', nickname: '阿强', cardname: undefined },
    });
  });

  it('puts a private message in the per-user stream', () => {
    const msg = message(oneBotToInbound(fixture('private-friend-message.json')));
    expect(msg).toMatchObject({
      chatType: 'private',
      chatStreamId: 'qq-p-2345678901',
      clientMessageId: '1873945150',
      text: '记住，我最喜欢的编程语言是 TypeScript',
      groupId: undefined,
      mentioned: false,
    });
  });

  it('ignores notice and meta events', () => {
    expect(oneBotToInbound(fixture('notice-group-increase.json'))).toEqual({
      ignored: true,
      reason: 'notice',
    });
    expect(oneBotToInbound(fixture('meta-heartbeat.json'))).toEqual({ ignored: true, reason: 'meta_event' });
    expect(oneBotToInbound({ post_type: 'request', request_type: 'friend', self_id: 1 })).toMatchObject({
      ignored: true,
    });
  });

  it("ignores NapCat's echo of the bot's own messages and guild messages", () => {
    const own = { ...fixture('group-message-plain.json'), post_type: 'message_sent' };
    expect(oneBotToInbound(own)).toMatchObject({ ignored: true });
    const guild = { ...fixture('group-message-plain.json'), message_type: 'guild' };
    expect(oneBotToInbound(guild)).toMatchObject({ ignored: true });
  });

  it('parses the CQ-code string form the same way as the array form', () => {
    const event = fixture('group-message-at-bot.json');
    const stringForm = {
      ...event,
      message: event.raw_message,
      message_format: 'string',
    };
    const msg = message(oneBotToInbound(stringForm));
    expect(msg).toMatchObject({ mentioned: true, replyTo: '1873945000', text: '今天吃什么[图片]' });
    expect(msg.segments.map((s) => s.type)).toEqual(['reply', 'at', 'text', 'image']);
  });

  it('detects the mention in CQ strings only when it names self_id', () => {
    const event = fixture('group-message-plain.json');
    const other = message(oneBotToInbound({ ...event, message: '[CQ:at,qq=42,name=老王] 你好' }));
    expect(other).toMatchObject({ mentioned: false, text: '@老王 你好' });
    const all = message(oneBotToInbound({ ...event, message: '[CQ:at,qq=all] 开会' }));
    expect(all).toMatchObject({ mentioned: false, text: '@全体成员 开会' });
    const bot = message(oneBotToInbound({ ...event, message: '[CQ:at,qq=1145141919]' }));
    // Nothing but the mention: the text keeps it, so the bot still sees a message.
    expect(bot).toMatchObject({ mentioned: true, text: '@1145141919' });
  });

  it('unescapes CQ text and parameters', () => {
    expect(
      parseCqString('a &#91;b&#93; &amp; [CQ:share,url=https://x.invalid/?a=1&amp;b=2,title=x&#44;y]'),
    ).toEqual([
      { type: 'text', data: { text: 'a [b] & ' } },
      { type: 'share', data: { url: 'https://x.invalid/?a=1&b=2', title: 'x,y' } },
    ]);
  });

  it('renders faces, records and other media as placeholders, keeping their data', () => {
    const msg = message(
      oneBotToInbound({
        ...fixture('private-friend-message.json'),
        message: [
          { type: 'face', data: { id: '14' } },
          { type: 'image', data: { file: 'b.jpg', sub_type: 0, url: 'https://x.invalid/b.jpg' } },
          { type: 'record', data: { file: 'c.amr' } },
          { type: 'unknown_kind', data: { x: 1 } },
        ],
      }),
    );
    expect(msg.text).toBe('[表情][图片][语音]');
    expect(msg.segments).toEqual([
      { type: 'face', data: { id: '14' } },
      { type: 'image', data: { file: 'b.jpg', sub_type: 0, url: 'https://x.invalid/b.jpg' } },
      { type: 'record', data: { file: 'c.amr' } },
      { type: 'unknown_kind', data: { x: 1 } },
    ]);
  });

  it('drops inline base64 media over the size cap but notes it', () => {
    const big = `base64://${'A'.repeat(800 * 1024)}`;
    const msg = message(
      oneBotToInbound({
        ...fixture('private-friend-message.json'),
        message: [{ type: 'image', data: { file: big } }],
      }),
    );
    expect(msg.segments[0]!.data.file).toBeUndefined();
    expect(msg.segments[0]!.data.media).toMatchObject({ dropped: true, size_bytes: 600 * 1024 });
  });

  it('accepts ids sent as strings and unknown extra fields', () => {
    const event = {
      ...fixture('group-message-plain.json'),
      self_id: '1145141919',
      group_id: '123456789',
      message_id: '-5',
      user_id: '3456789012',
      some_future_field: { nested: true },
    };
    expect(message(oneBotToInbound(event))).toMatchObject({ clientMessageId: '-5', groupId: '123456789' });
  });

  it('rejects a malformed message event, listing the fields', () => {
    const event = { ...fixture('group-message-plain.json'), message: 42, message_id: null };
    const err = thrown(() => oneBotToInbound(event));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields.map((f) => f.path)).toEqual(
      expect.arrayContaining(['message', 'message_id']),
    );
    expect(() => oneBotToInbound({ self_id: 1 })).toThrow(ValidationError);
  });

  it('derives identifier-safe stream ids, hashing ids that are not', () => {
    expect(chatStreamIdFor('qq', 'group', '123')).toBe('qq-g-123');
    const odd = chatStreamIdFor('discord', 'private', 'user name/with spaces');
    expect(odd).toMatch(/^discord-p-h[0-9a-f]{40}$/);
    expect(chatStreamIdFor('discord', 'private', 'user name/with spaces')).toBe(odd);
  });

  it('maps the message to a send on behalf of the resolved agent', () => {
    const msg = message(oneBotToInbound(fixture('group-message-at-bot.json')));
    expect(toSendInput(msg, 'bot1', 'onebot')).toMatchObject({
      message: '今天吃什么[表情包]',
      agentId: 'bot1',
      platform: 'qq',
      chatStreamId: 'qq-g-123456789',
      clientMessageId: '1873945021',
      chatType: 'group',
      replyTo: '1873945000',
      senderInfo: { user_id: '2345678901', username: '小明', cardname: '明明', group_id: '123456789' },
      mentioned: true,
      source: 'onebot',
    });
  });
});
