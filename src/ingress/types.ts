import type { Principal } from '../api/auth/principal';

/**
 * One inbound message as every entry point (`POST /chat/send`, its batch form, the OneBot and
 * maim adapters) hands it to the ingress. Identifiers are already validated.
 */
export interface SendInput {
  message: string;
  chatStreamId?: string | undefined;
  agentId?: string | undefined;
  platform?: string | undefined;
  /** `tenant_id` named in the body (checked against the credential). */
  tenantId?: string | undefined;
  clientMessageId?: string | undefined;
  chatType?: 'group' | 'private' | undefined;
  replyTo?: string | undefined;
  senderInfo?:
    | {
        user_id?: string | undefined;
        username?: string | undefined;
        cardname?: string | undefined;
        group_id?: string | undefined;
        group_name?: string | undefined;
      }
    | undefined;
  options?:
    | {
        enable_memory?: boolean | undefined;
        enable_emoji?: boolean | undefined;
        priority?: 'low' | 'normal' | 'high' | undefined;
      }
    | undefined;
  /** Adapter-provided extras. */
  segments?: unknown[] | undefined;
  mentioned?: boolean | undefined;
  source?: 'http' | 'onebot' | 'maim' | undefined;
}

/** The `data` of a successful send (API.md § Chat and messages). */
export interface SendResult {
  message_id: string;
  tenant_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  status: 'queued' | 'processing' | 'replied' | 'no_reply' | 'failed';
  duplicate: boolean;
  /** Present once final (after `?wait`). */
  response?: string | null;
  actions_taken?: unknown[];
  tokens_used?: number | null;
  queue_wait_ms?: number | null;
  processing_time_ms?: number | null;
  error?: string | null;
}

/** Who sends, and the request headers that matter to a send. */
export interface SendCaller {
  principal: Principal;
  /** `X-Tenant-ID`, `X-Agent-ID`, `Idempotency-Key` as received. */
  headers: {
    tenantId?: string | undefined;
    agentId?: string | undefined;
    idempotencyKey?: string | undefined;
  };
}
