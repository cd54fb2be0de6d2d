import {
  apiAck,
  fromApiMessage,
  maimReplyMessage,
  type MaimReplyTarget,
  messageIdEchoSchema,
  plainCustomFrame,
  toApiSendMessage,
} from '../../src/adapters/maimFrames';
import { formatSocketId, parseSocketId } from '../../src/delivery/socketRelay';

const GROUP: MaimReplyTarget = {
  platform: 'qq',
  chatType: 'group',
  groupId: '123456789',
  groupName: '技术交流群',
  userId: null,
  botAccountId: '1145141919',
  quotedPlatformId: '1873945021',
};

describe('maim_message frames', () => {
  it('builds a group reply the Napcat adapter sends to the group: group_info and the bot as user_info, a reply segment', () => {
    const reply = maimReplyMessage(GROUP, { messageId: 'msg_1', text: '黄焖鸡', time: 1730000000 });
    const group = { platform: 'qq', group_id: '123456789', group_name: '技术交流群' };
    const bot = { platform: 'qq', user_id: '1145141919' };
    expect(reply).toMatchObject({
      message_info: {
        platform: 'qq',
        message_id: 'msg_1',
        time: 1730000000,
        group_info: group,
        user_info: bot,
        receiver_info: { group_info: group, user_info: bot },
      },
      message_segment: {
        type: 'seglist',
        data: [
          { type: 'reply', data: '1873945021' },
          { type: 'text', data: '黄焖鸡' },
        ],
      },
    });
  });

  it('builds a private reply to the user (no group_info, no reply segment when nothing is quoted), and none without a target', () => {
    const target: MaimReplyTarget = {
      ...GROUP,
      chatType: 'private',
      groupId: null,
      userId: '2345678901',
      quotedPlatformId: null,
    };
    const reply = maimReplyMessage(target, { messageId: 'msg_2', text: 'hi', time: 1 });
    expect(reply?.message_info).not.toHaveProperty('group_info');
    expect(reply).toMatchObject({
      message_info: {
        user_info: { user_id: '2345678901' },
        receiver_info: { user_info: { user_id: '2345678901' } },
      },
      message_segment: { data: [{ type: 'text', data: 'hi' }] },
    });
    expect(
      maimReplyMessage({ ...target, userId: null }, { messageId: 'm', text: 't', time: 1 }),
    ).toBeUndefined();
    expect(
      maimReplyMessage({ ...GROUP, groupId: null }, { messageId: 'm', text: 't', time: 1 }),
    ).toBeUndefined();
  });

  it('converts like MessageConverter: a reply to_api_send keeps the target only in receiver_info; a received message from_api_receive', () => {
    const reply = maimReplyMessage(GROUP, { messageId: 'msg_1', text: 'x', time: 1 })!;
    const api = toApiSendMessage(reply, { keyId: 'key_1', platform: 'qq' });
    expect(api.message_info).not.toHaveProperty('group_info');
    expect(api.message_info).not.toHaveProperty('user_info');
    expect(api).toMatchObject({
      message_info: { receiver_info: { group_info: { group_id: '123456789' } } },
      message_dim: { api_key: 'key_1', platform: 'qq' },
    });
    const received = fromApiMessage({
      message_info: {
        platform: 'qq',
        message_id: '1',
        sender_info: {
          user_info: { platform: 'qq', user_id: '2' },
          group_info: { platform: 'qq', group_id: '3' },
        },
      },
      message_segment: { type: 'text', data: 'hi' },
      message_dim: { api_key: 'k', platform: 'qq' },
    });
    expect(received).toEqual({
      message_info: {
        platform: 'qq',
        message_id: '1',
        sender_info: {
          user_info: { platform: 'qq', user_id: '2' },
          group_info: { platform: 'qq', group_id: '3' },
        },
        user_info: { platform: 'qq', user_id: '2' },
        group_info: { platform: 'qq', group_id: '3' },
      },
      message_segment: { type: 'text', data: 'hi' },
    });
  });

  it('tells custom frames from MessageBase, reads echoes with integer ids, and acknowledges by msg_id', () => {
    expect(
      plainCustomFrame({ message_type_name: 'message_id_echo', content: { a: 1 }, is_custom_message: true }),
    ).toEqual({
      name: 'message_id_echo',
      content: { a: 1 },
    });
    expect(plainCustomFrame({ message_info: {}, message_segment: {} })).toBeUndefined();
    expect(messageIdEchoSchema.parse({ type: 'echo', echo: 'msg_1', actual_id: 123 })).toMatchObject({
      echo: 'msg_1',
      actual_id: '123',
    });
    expect(messageIdEchoSchema.safeParse({ type: 'echo', echo: 'msg_1' }).success).toBe(false);
    expect(apiAck('m1', { ackId: 'a1', uuid: 'u1', nowSeconds: 5 })).toEqual({
      ver: 1,
      msg_id: 'a1',
      type: 'sys_ack',
      meta: { uuid: 'u1', acked_msg_id: 'm1', timestamp: 5 },
      payload: { status: 'received', server_timestamp: 5 },
    });
  });

  it('names chat sockets unambiguously, ids with colons included', () => {
    for (const id of [
      { kind: 'onebot', accountId: '1145141919' },
      { kind: 'maim', agentId: 'bot:1', platform: 'qq' },
      { kind: 'maim', agentId: 'a%3A', platform: 'tg:x' },
    ] as const) {
      expect(parseSocketId(formatSocketId(id))).toEqual(id);
    }
    expect(parseSocketId('maim:only-agent')).toBeUndefined();
    expect(parseSocketId('1145141919')).toBeUndefined();
  });
});
