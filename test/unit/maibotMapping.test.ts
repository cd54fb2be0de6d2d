import { detectGeneration, UnknownSchemaError } from '../../src/legacy/detect';
import { clean, fromDateTime, identifier, json, type MapContext } from '../../src/legacy/mapping/common';
import { llmStatus } from '../../src/legacy/mapping/shared';
import { mapChatStreamV0, mapMessageV0, mapPersonInfoV0, orphanChatV0 } from '../../src/legacy/mapping/v0';
import { mapChatSessionV1, mapMessageV1 } from '../../src/legacy/mapping/v1';
import { createProgress, formatDuration, progressLine } from '../../src/legacy/progress';
import { checkSqliteHeader, SourceFileError, type SourceRow } from '../../src/legacy/sqliteSource';
import { canonical } from '../../src/legacy/verify';

const ctx: MapContext = {
  agentId: 'bot',
  defaultPlatform: 'qq',
  streams: new Map([
    [
      '0123456789abcdef0123456789abcdef',
      { chatStreamId: '0123456789abcdef0123456789abcdef', platform: 'qq' },
    ],
    ['sess-1', { chatStreamId: 'sess-1', platform: 'discord' }],
  ]),
  botUserIds: new Set(['10000']),
};

const row = (rowid: number, values: Record<string, string | number | Uint8Array | null>): SourceRow => ({
  ...values,
  rowid,
});

describe('schema detection', () => {
  const cols = (...c: string[]) => new Set(c);

  it('recognises 0.x by chat_streams + messages and 1.x by chat_sessions + mai_messages', () => {
    const v0 = new Map([
      ['chat_streams', cols('id', 'stream_id')],
      ['messages', cols('id', 'message_id', 'chat_id', 'time')],
    ]);
    expect(detectGeneration(v0).name).toBe('0.x');
    const v1 = new Map([
      ['chat_sessions', cols('id', 'session_id')],
      ['mai_messages', cols('id', 'message_id', 'session_id')],
      // A 1.x database can keep 0.x tables around; the 1.x ones win.
      ...v0,
    ]);
    expect(detectGeneration(v1).name).toBe('1.x');
  });

  it('names the tables it found when it is neither', () => {
    const other = new Map([['notes', cols('id')]]);
    expect(() => detectGeneration(other)).toThrow(UnknownSchemaError);
    expect(() => detectGeneration(other)).toThrow(/found notes/);
    expect(() => detectGeneration(new Map())).toThrow(/found no tables/);
  });
});

describe('0.x mapping', () => {
  it('maps a group chat stream with its MaiBot details in metadata', () => {
    const mapped = mapChatStreamV0(
      {
        stream_id: '0123456789abcdef0123456789abcdef',
        create_time: 1717000000.5,
        last_active_time: 1717000100,
        platform: 'qq',
        group_id: '123',
        group_name: '测试群🎉',
        user_id: '42',
        user_nickname: '小明',
        user_cardname: null,
      },
      ctx,
    );
    expect(mapped?.values).toMatchObject({
      chat_stream_id: 'qq-g-123', // the stream MaiHive's adapters use for that group
      agent_id: 'bot',
      chat_type: 'group',
      group_name: '测试群🎉',
      created_at: new Date(1717000000500),
      metadata: { maibot: { stream_id: '0123456789abcdef0123456789abcdef', user_nickname: '小明' } },
    });
    expect((mapped?.values.metadata as { maibot: object }).maibot).not.toHaveProperty('user_cardname');
  });

  it('rebuilds a vanished chat from a message, a private one when it has no group', () => {
    const orphan = orphanChatV0(
      'abc',
      { chat_info_platform: 'qq', chat_info_user_id: '7', chat_info_create_time: 5 },
      ctx,
    );
    expect(orphan.values).toMatchObject({
      chat_type: 'private',
      user_id: '7',
      metadata: { maibot: { recreated: true } },
    });
    // No describing row at all: times are left to the database.
    expect(orphanChatV0('abc', undefined, ctx).values.created_at).toBeUndefined();
  });

  it("maps a user message in, the bot's own message out as a reply, and never as queued", () => {
    const base = {
      chat_id: '0123456789abcdef0123456789abcdef',
      time: 1717000000.1234,
      processed_plain_text: '你好😀',
    };
    const incoming = mapMessageV0(row(3, { ...base, message_id: 'm3', user_id: '42', is_at: 1 }), ctx);
    const reply = mapMessageV0(row(4, { ...base, message_id: 'm4', user_id: '10000', reply_to: 'm3' }), ctx);
    if ('skip' in incoming || 'skip' in reply) throw new Error('skipped');
    expect(incoming.rows.messages![0]!.values).toMatchObject({
      message_id: 'maibot:bot:messages:3',
      client_message_id: 'm3',
      direction: 'in',
      status: 'no_reply',
      is_mentioned: true,
      content: '你好😀',
      created_at: new Date(1717000000123),
    });
    expect(reply.rows.messages![0]!.values).toMatchObject({
      direction: 'out',
      status: 'sent',
      reply_to: 'm3',
    });
  });

  it('skips, with a reason, a message without a time, and falls back to display_message for content', () => {
    expect(mapMessageV0(row(1, { chat_id: '0123456789abcdef0123456789abcdef', time: null }), ctx)).toEqual({
      skip: 'message without a valid time',
    });
    const m = mapMessageV0(
      row(2, {
        chat_id: '0123456789abcdef0123456789abcdef',
        time: 1,
        processed_plain_text: null,
        display_message: '[图片]',
      }),
      ctx,
    );
    expect('rows' in m && m.rows.messages![0]!.values.content).toBe('[图片]');
  });

  it('keeps memory points that are not JSON as a one-element list', () => {
    const p = mapPersonInfoV0(
      row(1, { person_id: 'p', user_id: '42', platform: 'qq', memory_points: '不是JSON', know_times: 2.6 }),
      ctx,
    );
    expect('rows' in p && p.rows.person_info![0]!.values).toMatchObject({
      person_id: 'maibot:bot:p',
      memory_points: ['不是JSON'],
      know_times: 3,
    });
  });
});

describe('1.x mapping', () => {
  it('maps a session and a message with its raw msgpack kept', () => {
    const s = mapChatSessionV1(
      {
        session_id: 'sess-1',
        platform: 'discord',
        group_id: null,
        user_id: '9',
        created_timestamp: '2024-11-01 10:00:00.250000',
      },
      ctx,
    );
    expect(s?.values).toMatchObject({
      chat_type: 'private',
      platform: 'discord',
      created_at: new Date(2024, 10, 1, 10, 0, 0, 250),
    });
    const m = mapMessageV1(
      row(9, {
        session_id: 'sess-1',
        timestamp: '2024-11-01 10:00:01',
        message_id: 'x',
        user_id: '9',
        raw_content: new Uint8Array([1, 2]),
      }),
      ctx,
    );
    expect('rows' in m && m.rows.messages![0]!.values).toMatchObject({
      platform: 'discord',
      segments: [{ type: 'maibot_raw_msgpack', data: 'AQI=' }],
      content: '',
    });
  });
});

describe('conversions', () => {
  it('reads naive DATETIME text as local time, and numbers as Unix seconds', () => {
    expect(fromDateTime('2024-05-01 12:30:45.123456')).toEqual(new Date(2024, 4, 1, 12, 30, 45, 123));
    expect(fromDateTime(1717000000)).toEqual(new Date(1717000000000));
    expect(fromDateTime('garbage')).toBeNull();
    expect(fromDateTime(null)).toBeNull();
  });

  it('cleans what PostgreSQL refuses: NUL, and half an emoji in text and in JSON', () => {
    expect(clean('a\0b')).toBe('ab');
    expect(clean('x\ud83dy')).toBe('x\uFFFDy');
    expect(clean('ok😀')).toBe('ok😀');
    expect(json('["\\ud83d", "\\u0000a", {"k": "\\ud83d\\ude00"}]')).toEqual(['\uFFFD', 'a', { k: '😀' }]);
  });

  it('keeps valid ids and hashes the others into a stable identifier', () => {
    expect(identifier('0123abc')).toBe('0123abc');
    expect(identifier('qq:群/1')).toMatch(/^mb-[0-9a-f]{40}$/);
    expect(identifier('qq:群/1')).toBe(identifier('qq:群/1'));
  });

  it("maps MaiBot's free-text status", () => {
    expect(llmStatus('success')).toEqual({ status: 'success', error: null });
    expect(llmStatus('error: 429')).toEqual({ status: 'error', error: 'error: 429' });
    expect(llmStatus('Timeout after 30s')).toEqual({ status: 'timeout', error: 'Timeout after 30s' });
  });

  it('compares values in their round-trip form', () => {
    expect(canonical('real', 0.1)).toBe(canonical('real', Math.fround(0.1)));
    expect(canonical('numeric6', '0.001235')).toBe(canonical('numeric6', 0.001235));
    expect(canonical('jsonb', { b: 1, a: [2] })).toBe(canonical('jsonb', { a: [2], b: 1 }));
    expect(canonical('ts', new Date(5))).toBe(5);
  });
});

describe('SQLite header check', () => {
  const header = (pageSize: number, pages: number) => {
    const b = new Uint8Array(100);
    b.set(Buffer.from('SQLite format 3\0', 'latin1'));
    const v = new DataView(b.buffer);
    v.setUint16(16, pageSize);
    v.setUint32(24, 7);
    v.setUint32(28, pages);
    v.setUint32(92, 7);
    return b;
  };

  it('refuses what is not SQLite, and a file shorter than its header says', () => {
    expect(() => checkSqliteHeader(Buffer.from('hello'))).toThrow(SourceFileError);
    expect(() => checkSqliteHeader(header(4096, 3))).toThrow(/truncated/);
    const whole = new Uint8Array(4096 * 3);
    whole.set(header(4096, 3));
    expect(() => checkSqliteHeader(whole)).not.toThrow();
  });
});

describe('progress', () => {
  it('shows a bar on a terminal, rows/s and ETA', () => {
    expect(progressLine('messages', 500, 1000, 1000, true)).toBe(
      'messages         [############------------]  50% 500/1000  500 rows/s  ETA 1s',
    );
    expect(progressLine('messages', 1000, 1000, 2000, false)).toBe(
      'messages         100% 1000/1000  500 rows/s  ETA 0s',
    );
    expect(formatDuration(3725)).toBe('1h02m');
  });
});

describe('progress output', () => {
  it('redraws one line on a terminal and writes throttled plain lines otherwise', () => {
    let clock = 0;
    const tty: string[] = [];
    const bar = createProgress({ write: (s: string) => tty.push(s), isTTY: true }, () => clock);
    bar.start('messages', 100);
    clock = 1000;
    bar.advance('messages', 50);
    bar.finish('messages');
    expect(tty.every((s) => s.startsWith('\r'))).toBe(true);
    expect(tty[tty.length - 1]).toMatch(/\[#+-*\]\s+50% 50\/100 .*\n$/);

    const plain: string[] = [];
    const lines = createProgress({ write: (s: string) => plain.push(s) }, () => clock);
    lines.start('messages', 100);
    for (let i = 0; i < 9; i++) {
      clock += 500;
      lines.advance('messages', 10);
    }
    lines.advance('messages', 10);
    lines.finish('messages');
    // 5 s of advances: a line at 2 s and at 4 s, then the final line
    expect(plain).toHaveLength(3);
    expect(plain[plain.length - 1]).toMatch(/^messages\s+100% 100\/100/);
  });
});
