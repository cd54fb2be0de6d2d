import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { maimToInbound, parseMaimMessage } from '../../src/adapters/maim';
import { type AdapterOutcome, type InboundMessage, MAX_SEGMENT_DATA_BYTES } from '../../src/adapters/types';
import { ValidationError } from '../../src/errors';

interface MaimFixture {
  message_info: Record<string, unknown> & { user_info: Record<string, unknown> };
  message_segment: { type: string; data: unknown };
  [key: string]: unknown;
}

function fixture(name: string): MaimFixture {
  return JSON.parse(readFileSync(join(__dirname, '../fixtures/maim', name), 'utf8')) as MaimFixture;
}

function message(outcome: AdapterOutcome): InboundMessage {
  if (outcome.ignored) throw new Error(`expected a message, got ignored (${outcome.reason})`);
  return outcome;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

const BOT = { accountIds: ['1145141919'], nickname: '麦麦' };

function withSegments(base: MaimFixture, data: unknown[]): MaimFixture {
  return { ...base, message_segment: { type: 'seglist', data } };
}

describe('maim_message adapter', () => {
  it('normalizes a group message: quote stripped into reply-to, bot mention detected, emoji as placeholder', () => {
    const msg = message(maimToInbound(fixture('group-message.json'), BOT));
    expect(msg).toMatchObject({
      platform: 'qq',
      chatType: 'group',
      chatStreamId: 'qq-g-123456789',
      clientMessageId: '1873945021',
      text: '今天吃什么[表情包]',
      sender: { userId: '2345678901', nickname: '小明', cardname: '明明' },
      groupId: '123456789',
      groupName: '技术交流群',
      replyTo: '1873945000',
      mentioned: true,
    });
    expect(msg.segments[0]).toEqual({
      type: 'quote',
      data: { id: '1873945000', user_id: '1145141919', nickname: '麦麦', text: '早上好', to_bot: true },
    });
    const emoji = msg.segments.find((s) => s.type === 'emoji');
    expect(emoji?.data).toMatchObject({ size_bytes: 70 });
    expect(typeof emoji?.data.base64).toBe('string');
  });

  it('sees no mention when the @ names another account than the bot', () => {
    const msg = message(maimToInbound(fixture('group-message.json'), { accountIds: ['999'] }));
    expect(msg.mentioned).toBe(false);
    expect(msg.text).toBe('@麦麦 今天吃什么[表情包]');
    expect(msg.segments[0]!.data.to_bot).toBe(false);
  });

  it('sees no mention in a plain group message', () => {
    const base = fixture('group-message.json');
    const plain = withSegments({ ...base, message_info: { ...base.message_info, additional_config: {} } }, [
      { type: 'text', data: '有人周末一起去爬山吗' },
    ]);
    const msg = message(maimToInbound(plain, BOT));
    expect(msg).toMatchObject({ mentioned: false, replyTo: undefined, text: '有人周末一起去爬山吗' });
  });

  it('puts a private message in the per-user stream', () => {
    const msg = message(maimToInbound(fixture('private-message.json'), BOT));
    expect(msg).toMatchObject({
      chatType: 'private',
      chatStreamId: 'qq-p-2345678901',
      clientMessageId: '1873945150',
      text: '记住，我最喜欢的编程语言是 TypeScript',
      groupId: undefined,
      sender: { userId: '2345678901', nickname: '小明', cardname: undefined },
      mentioned: false,
    });
  });

  it('reads a quote split over several segments, as the Napcat adapter sends it', () => {
    const msg = message(
      maimToInbound(
        withSegments(fixture('private-message.json'), [
          { type: 'text', data: '[回复<老王:42>：' },
          { type: 'image', data: 'iVBORw0KGgo=' },
          { type: 'text', data: '看这个' },
          { type: 'text', data: ']，说：' },
          { type: 'text', data: '好看' },
        ]),
        BOT,
      ),
    );
    expect(msg.text).toBe('好看');
    expect(msg.segments[0]).toMatchObject({
      type: 'quote',
      data: { user_id: '42', nickname: '老王', text: '[图片]看这个', to_bot: false },
    });
  });

  it('honours mention_bot, at and reply segments and nested seglists', () => {
    const msg = message(
      maimToInbound(
        withSegments(fixture('private-message.json'), [
          { type: 'reply', data: '777' },
          {
            type: 'seglist',
            data: [
              { type: 'mention_bot', data: 1.0 },
              { type: 'text', data: '在吗' },
            ],
          },
          { type: 'at', data: '老王:42' },
          { type: 'voice', data: 'AAAA' },
        ]),
        BOT,
      ),
    );
    expect(msg).toMatchObject({ mentioned: true, replyTo: '777', text: '在吗@老王[语音]' });
  });

  it('drops media data over the size cap but notes it', () => {
    const big = 'A'.repeat(Math.ceil((MAX_SEGMENT_DATA_BYTES * 4) / 3) + 400);
    const msg = message(
      maimToInbound(withSegments(fixture('private-message.json'), [{ type: 'image', data: big }]), BOT),
    );
    expect(msg.text).toBe('[图片]');
    expect(msg.segments[0]!.data).toMatchObject({ dropped: true });
    expect(msg.segments[0]!.data.base64).toBeUndefined();
  });

  it('keeps a message that only mentions the bot as its mention', () => {
    const msg = message(
      maimToInbound(
        withSegments(fixture('private-message.json'), [{ type: 'text', data: '@<麦麦:1145141919>' }]),
        BOT,
      ),
    );
    expect(msg).toMatchObject({ mentioned: true, text: '@麦麦' });
  });

  it("ignores notify events and the bot's own messages", () => {
    const notify = { ...fixture('private-message.json'), message_segment: { type: 'notify', data: {} } };
    expect(maimToInbound(notify, BOT)).toEqual({ ignored: true, reason: 'notify' });
    const base = fixture('private-message.json');
    const own = {
      ...base,
      message_info: {
        ...base.message_info,
        user_info: { ...base.message_info.user_info, user_id: '1145141919' },
      },
    };
    expect(maimToInbound(own, BOT)).toEqual({ ignored: true, reason: 'own_message' });
  });

  it('rejects a malformed MessageBase, listing the fields', () => {
    const base = fixture('private-message.json');
    const bad = { ...base, message_info: { ...base.message_info, platform: 'q q', message_id: null } };
    const err = thrown(() => parseMaimMessage(bad));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).fields.map((f) => f.path)).toEqual(
      expect.arrayContaining(['message_info.platform', 'message_info.message_id']),
    );
    const nested = withSegments(base, [{ type: 'seglist', data: 'not a list' }]);
    expect(thrown(() => maimToInbound(nested, BOT))).toBeInstanceOf(ValidationError);
  });

  it('accepts unknown extra fields', () => {
    const extra = { ...fixture('private-message.json'), template_info: { x: 1 }, future: true };
    expect(message(maimToInbound(extra, BOT)).clientMessageId).toBe('1873945150');
  });
});
