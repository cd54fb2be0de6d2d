import type { Redis } from 'ioredis';

import type { Keyspace } from '../redis/keys';
import type { Publication } from './tenantQueues';

/**
 * The events of a chat stream, fanned out over Redis pub/sub (`keys.streamEvents`) to the SSE
 * clients of every API process. The ingress publishes `message.received`; the workers publish the
 * outcome events with the same shape.
 */
export const STREAM_EVENT_TYPES = [
  'message.received',
  'message.replied',
  'message.no_reply',
  'message.failed',
] as const;
export type StreamEventType = (typeof STREAM_EVENT_TYPES)[number];

export interface StreamEvent {
  type: StreamEventType;
  message_id: string;
  tenant_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  /** ISO-8601 time of the event. */
  at: string;
  /** The incoming text (`message.received`). */
  content?: string;
  sender_info?: Record<string, string | undefined>;
  /** The bot's reply (`message.replied`). */
  response?: string | null;
  error?: string | null;
}

/** Final statuses: the ones `?wait` returns on, announced on `keys.messageDone(tenant)`. */
export const FINAL_STATUSES = ['replied', 'no_reply', 'failed'] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export function isFinalStatus(status: string): status is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/**
 * Published by the worker on `keys.messageDone(tenant)` after it stored a message's outcome
 * (store first, then publish: a waiter that subscribes late finds the outcome in the table).
 */
export interface MessageDoneEvent {
  message_id: string;
  status: FinalStatus;
  response?: string | null;
  actions_taken?: unknown[] | null;
  tokens_used?: number | null;
  queue_wait_ms?: number | null;
  processing_time_ms?: number | null;
  error?: string | null;
}

/** A stream event as the channel and message it is published with. */
export function streamEventPublication(keys: Keyspace, event: StreamEvent): Publication {
  return {
    channel: keys.streamEvents(event.tenant_id, event.chat_stream_id),
    message: JSON.stringify(event),
  };
}

export async function publishStreamEvent(redis: Redis, keys: Keyspace, event: StreamEvent): Promise<void> {
  const { channel, message } = streamEventPublication(keys, event);
  await redis.publish(channel, message);
}

export async function publishMessageDone(
  redis: Redis,
  keys: Keyspace,
  tenantId: string,
  event: MessageDoneEvent,
): Promise<void> {
  await redis.publish(keys.messageDone(tenantId), JSON.stringify(event));
}

/** A `MessageDoneEvent` read off the channel, or undefined for anything malformed. */
export function parseMessageDone(raw: string): MessageDoneEvent | undefined {
  try {
    const e = JSON.parse(raw) as Partial<MessageDoneEvent>;
    if (typeof e.message_id === 'string' && typeof e.status === 'string' && isFinalStatus(e.status)) {
      return e as MessageDoneEvent;
    }
  } catch {
    // not ours
  }
  return undefined;
}
