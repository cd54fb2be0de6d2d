import type { Redis } from 'ioredis';

import type { Principal } from '../auth/principal';
import type { TenantDirectory } from '../auth/tenantDirectory';
import type { EffectiveConfigReader } from '../configuration/effectiveConfig';
import type { Database } from '../db/database';
import type { Clock } from '../domain/clock';
import type { Logger } from '../logger';
import type { TenantQueues } from '../queues/tenantQueues';
import type { Keyspace } from '../redis/keys';
import type { OutcomeWaiters } from './outcomeWaiters';
import type { RateRefusals } from './rateRefusals';

/**
 * What the send path uses of the process's long-lived parts; the composition's `Dependencies`
 * has them all (declared here so that the ingress does not import the layers above it).
 */
export interface IngressDeps {
  readonly logger: Logger;
  readonly db: Database;
  /** Shared non-blocking Redis connection (commands, queue adds). */
  readonly redis: Redis;
  readonly keys: Keyspace;
  readonly queues: TenantQueues;
  readonly tenants: TenantDirectory;
  /** `?wait` requests waiting for their messages' outcomes. */
  readonly outcomes: OutcomeWaiters;
  /** Rate buckets this process saw empty: sends needing them are refused without a round trip. */
  readonly rateRefusals: RateRefusals;
  readonly clock: Clock;
  /** The content policy in force for a chat (config category `content_policy`). */
  readonly configReader: EffectiveConfigReader;
}

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
