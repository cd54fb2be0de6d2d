import { ConflictError, ForbiddenError } from '../errors';
import type { TenantSettings } from './tenantSettings';

export type CountLimit = 'max_agents' | 'max_chat_streams';

/**
 * A tenant at its `max_agents` / `max_chat_streams`: 409 CONFLICT with `details.reason` naming the
 * setting. Not 429: nothing gets better by waiting (no `Retry-After` could be honest), only by
 * deleting something or raising the setting. The same answer wherever a stream or agent is created.
 */
export function limitReached(reason: CountLimit, limit: number): ConflictError {
  return new ConflictError(`the tenant has reached its ${reason} (${limit})`, { details: { reason, limit } });
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
