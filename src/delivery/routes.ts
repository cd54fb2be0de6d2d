import { ONEBOT_PLATFORM } from '../adapters/onebot';
import type { AgentConfig } from '../domain/agentConfig';

/**
 * Whether a reply of the agent on `platform` may have somewhere to be pushed, so that a delivery
 * job is worth enqueuing: the agent's webhook, or, for QQ, OneBot (the reverse WebSocket the
 * chat's messages came over, or the agent's `onebot_http`). The job decides which, and skips
 * when there is none after all (a QQ chat served by HTTP POST quick operations only).
 */
export function hasDeliveryRoute(config: AgentConfig, platform: string): boolean {
  return config.delivery?.webhook_url !== undefined || platform === ONEBOT_PLATFORM;
}
