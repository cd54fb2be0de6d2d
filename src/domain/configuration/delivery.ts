import type { StoredAgentDeliverySettings } from '../agentConfig';
import type { ResolvedCategory } from './precedence';

/**
 * Where a chat's replies are pushed, from its effective `delivery` category (any scope: a tenant
 * default, an agent's, a platform's or one chat's own webhook). Pure.
 *
 * `webhook_url` and `webhook_secret` go together: the secret that signs a delivery is the one set
 * at the scope the URL comes from. A chat that overrides only the URL therefore gets unsigned
 * deliveries rather than ones signed with, say, the agent's secret (which would let that chat's
 * receiver replay signed bodies to the agent's own receiver). `onebot_http` is one key: its
 * `base_url` and `access_token` always come from one scope.
 */
export function deliverySettingsOf(resolved: ResolvedCategory): StoredAgentDeliverySettings {
  const v = resolved.values;
  const settings: StoredAgentDeliverySettings = {};
  if (typeof v.webhook_url === 'string') {
    settings.webhook_url = v.webhook_url;
    if (resolved.sources.webhook_secret === resolved.sources.webhook_url) {
      if (typeof v.webhook_secret_encrypted === 'string') {
        settings.webhook_secret_encrypted = v.webhook_secret_encrypted;
      } else if (typeof v.webhook_secret === 'string') settings.webhook_secret = v.webhook_secret;
    }
  }
  if (typeof v.onebot_http === 'object' && v.onebot_http !== null) {
    settings.onebot_http = v.onebot_http as NonNullable<StoredAgentDeliverySettings['onebot_http']>;
  }
  return settings;
}
