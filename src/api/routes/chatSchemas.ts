import { z } from 'zod';

import { IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { hasValidMessageLength, MAX_MESSAGE_CHARS } from '../../ingress/acceptMessage';
import type { SendInput } from '../../ingress/types';
import { MAX_WAIT_MS } from '../../ingress/waitForOutcome';

/** Schemas of the chat routes (API.md § Chat and messages), shared by the single and batch send. */

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
/** Platform user and group ids: QQ sends numbers, other platforms strings. */
const ExternalId = z.union([z.string().min(1).max(128), z.number().int()]).transform(String);
const Name = z.string().max(256);

export const SendBody = z
  .strictObject({
    message: z
      .string()
      .refine(hasValidMessageLength, { message: `must be 1-${MAX_MESSAGE_CHARS} characters after trimming` })
      .describe('the message text; stored verbatim'),
    chat_stream_id: Identifier.optional().describe('default: derived from sender_info, else "default"'),
    agent_id: Identifier.optional().describe('default: the credential\'s agent, else "default"'),
    platform: Identifier.optional().describe('default: the agent\'s default platform, else "default"'),
    tenant_id: Identifier.optional().describe("must be the credential's tenant (platform admins: any)"),
    client_message_id: z
      .union([z.string().min(1).max(255), z.number().int().nonnegative()])
      .transform(String)
      .optional()
      .describe('makes the send idempotent for 24 h'),
    sender_info: z
      .strictObject({
        user_id: ExternalId.nullish(),
        username: Name.nullish(),
        cardname: Name.nullish(),
        group_id: ExternalId.nullish(),
        group_name: Name.nullish(),
      })
      .optional(),
    options: z
      .strictObject({
        enable_memory: z.boolean().optional(),
        enable_emoji: z.boolean().optional(),
        priority: z.enum(['low', 'normal', 'high']).optional(),
      })
      .optional(),
  })
  .openapi('SendMessage');
export type SendBody = z.infer<typeof SendBody>;

export const BatchBody = z.strictObject({
  messages: z.array(z.unknown()).min(1).max(100).describe('up to 100 send bodies, each validated alone'),
});

export const WaitQuery = z.strictObject({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_MS)
    .optional()
    .describe(`ms to hold the response until the message is final (≤ ${MAX_WAIT_MS})`),
});

const Status = z.enum(['queued', 'processing', 'replied', 'no_reply', 'failed']);

export const SendData = z
  .object({
    message_id: z.string(),
    tenant_id: z.string(),
    agent_id: z.string(),
    platform: z.string(),
    chat_stream_id: z.string(),
    status: Status,
    duplicate: z.boolean(),
    response: z.string().nullable().optional(),
    actions_taken: z.array(z.unknown()).optional(),
    tokens_used: z.number().nullable().optional(),
    queue_wait_ms: z.number().nullable().optional(),
    processing_time_ms: z.number().nullable().optional(),
    error: z.string().nullable().optional(),
  })
  .openapi('SendResult');

export const BatchData = z.object({
  results: z.array(
    z.union([
      z.object({ success: z.literal(true), data: SendData }),
      z.object({
        success: z.literal(false),
        error: z.object({
          code: z.string(),
          message: z.string(),
          details: z.record(z.string(), z.unknown()),
        }),
      }),
    ]),
  ),
});

export const StatusData = z.object({
  message_id: z.string(),
  status: Status.or(z.literal('sent')),
  response: z.string().nullable().optional(),
  actions_taken: z.array(z.unknown()).nullable().optional(),
  tokens_used: z.number().nullable().optional(),
  queue_wait_ms: z.number().nullable().optional(),
  processing_time_ms: z.number().nullable().optional(),
  error: z.string().nullable().optional(),
});

export const MessageData = StatusData.extend({
  tenant_id: z.string(),
  agent_id: z.string(),
  platform: z.string(),
  chat_stream_id: z.string(),
  direction: z.enum(['in', 'out']),
  content: z.string(),
  client_message_id: z.string().nullable(),
  reply_to: z.string().nullable(),
  sender_info: z.object({
    user_id: z.string().nullable(),
    username: z.string().nullable(),
    cardname: z.string().nullable(),
  }),
  is_mentioned: z.boolean(),
  created_at: z.string(),
  processed_at: z.string().nullable(),
}).openapi('Message');

export const HistoryData = z.object({
  chat_stream_id: z.string(),
  messages: z.array(MessageData),
  next_before: z.string().nullable().describe('pass as ?before= for the next (older) page'),
});

export const MessageIdParams = z.strictObject({ message_id: z.string().min(1).max(128) });
export const StreamParams = z.strictObject({ chat_stream_id: Identifier });

export const HistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  before: z.string().max(512).optional().describe('the next_before of the previous page'),
});

const undefinedIfNull = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** A validated send body as the ingress takes it. */
export function toSendInput(body: SendBody): SendInput {
  const s = body.sender_info;
  return {
    message: body.message,
    chatStreamId: body.chat_stream_id,
    agentId: body.agent_id,
    platform: body.platform,
    tenantId: body.tenant_id,
    clientMessageId: body.client_message_id,
    senderInfo: s && {
      user_id: undefinedIfNull(s.user_id),
      username: undefinedIfNull(s.username),
      cardname: undefinedIfNull(s.cardname),
      group_id: undefinedIfNull(s.group_id),
      group_name: undefinedIfNull(s.group_name),
    },
    options: body.options,
    source: 'http',
  };
}
