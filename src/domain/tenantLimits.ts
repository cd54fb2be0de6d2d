import { ForbiddenError } from '../errors';
import type { TenantSettings } from './tenantSettings';

export type CountLimit = 'max_agents' | 'max_chat_streams';

/**
 * A tenant at its `max_agents` / `max_chat_streams`: 403 FORBIDDEN with `details.reason` naming the
 * setting and `details.limit` its value, the same answer wherever an agent or stream is created
 * (`POST /agents`, `POST /chat/streams`, and the first message of a new stream on the send path).
 *
 * Why 403: API.md gives 409 CONFLICT to "the id already exists", which is not the case here, and
 * 429 (RATE_LIMIT_EXCEEDED / QUOTA_EXCEEDED) to rates and periodic quotas that come back by waiting,
 * with a `Retry-After`; a size limit never comes back by waiting, so no `Retry-After` could be
 * honest. What remains is 403: the caller is authenticated but the tenant's settings do not permit
 * the operation, like `platform_not_allowed`. Only deleting something or raising the setting helps.
 */
export function limitReached(reason: CountLimit, limit: number): ForbiddenError {
  return new ForbiddenError(`the tenant has reached its ${reason} (${limit})`, {
    details: { reason, limit },
  });
}

/**
 * 403 FORBIDDEN (`details.reason: "platform_not_allowed"`) when the tenant restricts platforms
 * (`allowed_platforms` non-empty) and this one is not among them.
 */
export function assertPlatformAllowed(
  settings: Pick<TenantSettings, 'allowed_platforms'>,
  platform: string,
): void {
  const allowed = settings.allowed_platforms;
  if (allowed.length > 0 && !allowed.includes(platform)) {
    throw new ForbiddenError(`platform ${platform} is not allowed for this tenant`, {
      details: { reason: 'platform_not_allowed', platform, allowed_platforms: allowed },
    });
  }
}
