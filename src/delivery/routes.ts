import type { Redis } from 'ioredis';

import { ONEBOT_PLATFORM } from '../adapters/onebot';
import type { StoredAgentDeliverySettings } from '../domain/agentConfig';
import { keyspace } from '../redis/keys';

/** Where the reply is, for `hasDeliveryRoute`. */
export interface ReplyPlace {
  tenantId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
}

/**
 * Whether a reply has somewhere to be pushed, so that a delivery job is worth enqueuing: the
 * chat's effective `delivery` settings (`deliverySettingsOf`) name a webhook, or for QQ a OneBot
 * HTTP API, or the chat socket (OneBot reverse WebSocket,
 * maim_message adapter) the chat's messages came over (its route key, one Redis read). The job
 * decides which, and checks again.
 */
export async function hasDeliveryRoute(
  redis: Redis,
  prefix: string,
  delivery: Pick<StoredAgentDeliverySettings, 'webhook_url' | 'onebot_http'>,
  at: ReplyPlace,
): Promise<boolean> {
  if (delivery.webhook_url !== undefined) return true;
  if (at.platform === ONEBOT_PLATFORM && delivery.onebot_http !== undefined) return true;
  return (await redis.exists(keyspace(prefix).socketRoute(at.tenantId, at.agentId, at.chatStreamId))) === 1;
}
