import type { Principal } from '../../auth/principal';
import { type HeaderSource, tenantScope } from '../../auth/scope';
import { getChatStream } from '../../db/repositories/chatStreams';
import type { Dependencies } from '../../dependencies';
import { createIsolationContext, type IsolationContext } from '../../domain/isolationContext';
import { NotFoundError } from '../../errors';
import { isKnownStream } from '../../ingress/knownStreams';
import { mapRedisError } from '../../redis/availability';

/**
 * The context a chat read runs in: the caller's tenant (`X-Tenant-ID` for platform admins), and,
 * for an agent-bound credential, its agent, so that row-level security hides other agents' rows.
 */
export function readContext(principal: Principal, req: HeaderSource): IsolationContext {
  const { tenantId } = tenantScope(principal, req);
  return createIsolationContext({ tenantId, agentId: principal.agentId });
}

/**
 * 404 CHAT_STREAM_NOT_FOUND unless the stream is stored, or has had a message accepted that the
 * worker has not stored yet. Another tenant's stream looks exactly like a missing one.
 */
export async function requireChatStream(
  deps: Dependencies,
  ctx: IsolationContext,
  chatStreamId: string,
): Promise<void> {
  const stored = await deps.db.withTenant(ctx, (db) => getChatStream(db, chatStreamId));
  if (stored) return;
  const known = await isKnownStream(deps.redis, deps.keys, ctx.tenantId, chatStreamId).catch(
    (err: unknown) => {
      throw mapRedisError(err);
    },
  );
  if (!known) {
    throw new NotFoundError('CHAT_STREAM_NOT_FOUND', 'no such chat stream', { chat_stream_id: chatStreamId });
  }
}
