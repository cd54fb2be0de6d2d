import { createHmac, timingSafeEqual } from 'node:crypto';

import type { Request } from 'express';

import { ONEBOT_PLATFORM } from '../../adapters/onebot';
import type { Dependencies } from '../../dependencies';
import { UnauthorizedError } from '../../errors';
import { lookupAccount, lookupAgent } from '../../ingress/agentLookup';
import { rawBodyOf } from '../http/rawBody';

/**
 * NapCat's (and go-cqhttp's) HTTP POST signature: with a secret configured, every event carries
 * `X-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>` (NapCat signs with its HTTP client's
 * "token"; `packages/napcat-onebot/network/http-client.ts`). An agent with `onebot.secret`
 * accepts only events signed with it.
 */

/** The header value for `body` signed with `secret`. */
export function oneBotSignature(secret: string, body: Buffer | string): string {
  return `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`;
}

/** Constant-time check of a received `X-Signature` value. */
export function oneBotSignatureMatches(secret: string, body: Buffer, header: string | undefined): boolean {
  const m = /^sha1=([0-9a-fA-F]{40})$/.exec(header?.trim() ?? '');
  if (!m) return false;
  const expected = createHmac('sha1', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'));
}

/**
 * Refuses (401) an event for an agent that has a OneBot secret unless it is signed with it. The
 * agent is the one answering as the event's `self_id`, else the credential's; events naming no
 * agent of the tenant are left to the route (which refuses or ignores them).
 */
export async function requireOneBotSignature(
  deps: Dependencies,
  req: Request,
  tenantId: string,
  selfId: string | undefined,
  credentialAgentId: string | undefined,
): Promise<void> {
  const now = deps.clock.now();
  const account = selfId ? await lookupAccount(deps.db, tenantId, ONEBOT_PLATFORM, selfId, now) : undefined;
  const agentId = account?.agent_id ?? credentialAgentId;
  if (agentId === undefined) return;
  const stored = (await lookupAgent(deps.db, tenantId, agentId, now))?.oneBotSecret;
  if (!stored) return;
  let secret: string;
  try {
    secret = 'plain' in stored ? stored.plain : deps.adapterSecrets.decrypt(stored.sealed);
  } catch (err) {
    deps.logger.error(
      { err, tenant_id: tenantId, agent_id: agentId },
      "the agent's OneBot secret cannot be opened with MAIHIVE_SECRET_KEY: events for it are refused",
    );
    throw new UnauthorizedError('the X-Signature cannot be checked');
  }
  const body = rawBodyOf(req) ?? Buffer.alloc(0);
  if (!oneBotSignatureMatches(secret, body, req.header('x-signature'))) {
    throw new UnauthorizedError('missing or invalid X-Signature (sha1=<HMAC-SHA1 of the body>)');
  }
}
