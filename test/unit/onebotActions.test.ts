import { createHmac } from 'node:crypto';

import { oneBotSignature, oneBotSignatureMatches } from '../../src/api/onebot/signature';
import { actionVerdict, oneBotId, sendAction } from '../../src/delivery/onebotActions';

describe('OneBot reply actions', () => {
  it('sends to a group with a quote of the message answered, ids as numbers', () => {
    expect(
      sendAction(
        { chatType: 'group', groupId: '123456789', userId: '42', quotedPlatformId: '1873945021' },
        '好',
      ),
    ).toEqual({
      action: 'send_group_msg',
      params: {
        group_id: 123456789,
        message: [
          { type: 'reply', data: { id: '1873945021' } },
          { type: 'text', data: { text: '好' } },
        ],
      },
    });
  });

  it('sends privately without a quote when the platform id is unknown; no target → undefined', () => {
    expect(
      sendAction({ chatType: 'private', groupId: null, userId: 'u-1', quotedPlatformId: null }, 'hi'),
    ).toEqual({
      action: 'send_private_msg',
      params: { user_id: 'u-1', message: [{ type: 'text', data: { text: 'hi' } }] },
    });
    expect(
      sendAction({ chatType: 'group', groupId: null, userId: '1', quotedPlatformId: null }, 'x'),
    ).toBeUndefined();
    expect(oneBotId('12345678901234567890')).toBe('12345678901234567890');
  });

  it('sends an emoji image of a pack as an image segment, its text as the summary', () => {
    expect(
      sendAction({ chatType: 'private', groupId: null, userId: '7', quotedPlatformId: null }, '[表情:笑哭]', {
        base64: 'R0lGODlh',
      }),
    ).toEqual({
      action: 'send_private_msg',
      params: {
        user_id: 7,
        message: [{ type: 'image', data: { file: 'base64://R0lGODlh', summary: '[表情:笑哭]' } }],
      },
    });
  });

  it('reads retcode 0 as delivered and anything else as a failure', () => {
    expect(actionVerdict({ status: 'ok', retcode: 0, data: { message_id: 7 } })).toEqual({
      ok: true,
      platformMessageId: '7',
    });
    expect(actionVerdict({ status: 'ok', retcode: 0, data: null })).toEqual({
      ok: true,
      platformMessageId: null,
    });
    expect(actionVerdict({ status: 'failed', retcode: 200, message: 'x', wording: '发送失败' })).toEqual({
      ok: false,
      retcode: 200,
      message: 'retcode 200: 发送失败',
      retry: true,
    });
    expect(actionVerdict({ status: 'failed', retcode: 1400 })).toMatchObject({ ok: false, retry: false });
    expect(actionVerdict({ status: 'ok' })).toMatchObject({ ok: false, retcode: null });
    expect(actionVerdict('nope')).toMatchObject({ ok: false, retry: true });
  });
});

describe('NapCat X-Signature', () => {
  const body = '{"post_type":"message"}';
  it('is sha1=<hex HMAC-SHA1(secret, body)> and is checked exactly', () => {
    const signature = oneBotSignature('token', body);
    // HMAC-SHA1("token", body), computed independently.
    expect(signature).toBe(`sha1=${createHmac('sha1', 'token').update(body).digest('hex')}`);
    expect(oneBotSignatureMatches('token', Buffer.from(body), signature)).toBe(true);
    expect(
      oneBotSignatureMatches('token', Buffer.from(body), signature.toUpperCase().replace('SHA1', 'sha1')),
    ).toBe(true);
    expect(oneBotSignatureMatches('other', Buffer.from(body), signature)).toBe(false);
    expect(oneBotSignatureMatches('token', Buffer.from(`${body} `), signature)).toBe(false);
    expect(oneBotSignatureMatches('token', Buffer.from(body), undefined)).toBe(false);
    expect(oneBotSignatureMatches('token', Buffer.from(body), 'sha1=abc')).toBe(false);
  });
});
