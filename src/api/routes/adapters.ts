import type { Request } from 'express';
import { z } from 'zod';

import { maimMessageSchema, normalizeMaimMessage } from '../../adapters/maim';
import { oneBotEnvelopeSchema, oneBotToInbound } from '../../adapters/onebot';
import { type InboundMessage, toSendInput } from '../../adapters/types';
import { type Principal, SENDERS } from '../../auth/principal';
import { agentScope, tenantScope } from '../../auth/scope';
import { IsolationViolationError, NotFoundError } from '../../errors';
import { acceptMessage } from '../../ingress/acceptMessage';
import { lookupAccount, lookupAgentAccounts } from '../../ingress/agentLookup';
import type { SendCaller, SendResult } from '../../ingress/types';
import { sendOk } from '../envelope';
import { route } from '../http/route';
import { requireOneBotSignature } from '../onebot/signature';
import type { RouteContext } from './context';

/**
 * `POST /adapters/onebot/v11` and `POST /adapters/maim`: chat adapters post their native events
 * here instead of `/chat/send`. Bodies are third-party payloads, so unknown fields are accepted
 * (the one exception to "unknown fields rejected"); the adapter modules reduce them to one send.
 */

const waitQuery = z.object({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(30_000)
    .optional()
    .describe('ms to hold the response until the message is final (≤ 30000)'),
});

const sendData = z.object({
  message_id: z.string(),
  tenant_id: z.string(),
  agent_id: z.string(),
  platform: z.string(),
  chat_stream_id: z.string(),
  status: z.enum(['queued', 'processing', 'replied', 'no_reply', 'failed']),
  duplicate: z.boolean(),
  response: z.string().nullable().optional(),
});
const ignoredData = z.object({ ignored: z.literal(true), reason: z.string() });

const oneBotData = z.union([
  sendData.extend({
    reply: z
      .string()
      .optional()
      .describe('OneBot quick operation: the reply text (with ?wait, when replied)'),
    at_sender: z.boolean().optional(),
  }),
  ignoredData,
]);

function callerOf(principal: Principal, req: Request): SendCaller {
  return {
    principal,
    headers: {
      tenantId: req.header('x-tenant-id'),
      agentId: req.header('x-agent-id'),
      idempotencyKey: req.header('idempotency-key'),
    },
  };
}

function waitOptions(wait: number | undefined): { waitMs?: number } {
  return wait === undefined ? {} : { waitMs: wait };
}

/**
 * OneBot's quick operation rides along when the reply is ready in time. `at_sender` is sent
 * explicitly because OneBot defaults it to true in groups, and the bot answers like a member.
 */
function withQuickReply(result: SendResult): Record<string, unknown> {
  if (result.status !== 'replied' || !result.response) return { ...result };
  return { ...result, reply: result.response, at_sender: false };
}

export function adaptersRoutes({ router, registry, deps }: RouteContext): void {
  /** The agent that answers as the event's bot account; the credential may not name another. */
  async function agentForAccount(principal: Principal, req: Request, tenantId: string, msg: InboundMessage) {
    const accountId = msg.botAccountId ?? '';
    const account = await lookupAccount(deps.db, tenantId, msg.platform, accountId, deps.clock.now());
    if (!account) {
      throw new NotFoundError('AGENT_NOT_FOUND', 'no agent answers as this bot account', {
        platform: msg.platform,
        account_id: accountId,
      });
    }
    const named = req.header('x-agent-id');
    if (
      (principal.agentId !== undefined && principal.agentId !== account.agent_id) ||
      (named !== undefined && named !== '' && named !== account.agent_id)
    ) {
      throw new IsolationViolationError(
        'the bot account belongs to another agent than the credential allows',
      );
    }
    return account.agent_id;
  }

  route(router, registry, {
    method: 'post',
    path: '/adapters/onebot/v11',
    operationId: 'onebotEvent',
    headers: ['X-Tenant-ID', 'X-Agent-ID', 'Idempotency-Key'],
    summary: 'Receive a OneBot v11 event (NapCat / go-cqhttp HTTP POST)',
    tag: 'Adapters',
    auth: SENDERS,
    query: waitQuery,
    body: oneBotEnvelopeSchema,
    response: oneBotData,
    handler: async ({ body, query, principal, req, res }) => {
      const caller = principal;
      // The tenant is settled first, so a mismatched X-Tenant-ID is refused even for ignored events.
      const { tenantId } = tenantScope(caller, req);
      await requireOneBotSignature(deps, req, tenantId, body.self_id, caller.agentId);
      const outcome = oneBotToInbound(body);
      if (outcome.ignored) return { data: { ignored: true, reason: outcome.reason } };
      const agentId = await agentForAccount(caller, req, tenantId, outcome);
      const result = await acceptMessage(
        deps,
        callerOf(caller, req),
        toSendInput(outcome, agentId, 'onebot'),
        waitOptions(query.wait),
      );
      const data = withQuickReply(result);
      // NapCat and go-cqhttp read the quick operation at the top level of the HTTP response body.
      sendOk(res, data, 200, 'ok', 'reply' in data ? { reply: data.reply, at_sender: data.at_sender } : {});
      return { raw: true };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/adapters/maim',
    operationId: 'maimMessage',
    headers: ['X-Tenant-ID', 'X-Agent-ID', 'Idempotency-Key'],
    summary: 'Receive a maim_message MessageBase (MaiBot adapters)',
    tag: 'Adapters',
    auth: SENDERS,
    query: waitQuery,
    body: maimMessageSchema,
    response: z.union([sendData, ignoredData]),
    handler: async ({ body, query, principal, req }) => {
      const caller = principal;
      const { tenantId } = tenantScope(caller, req);
      // maim payloads carry no bot id: the agent comes from the credential or X-Agent-ID, and its
      // accounts on the message's platform tell which @-mentions name the bot.
      const agentId = agentScope(caller, req);
      const platform = body.message_info.platform;
      const accounts = await lookupAgentAccounts(deps.db, tenantId, agentId, deps.clock.now());
      const own = accounts.filter((a) => a.platform === platform);
      const outcome = normalizeMaimMessage(body, {
        accountIds: own.map((a) => a.account_id),
        nickname: own.find((a) => a.nickname)?.nickname ?? undefined,
      });
      if (outcome.ignored) return { data: { ignored: true, reason: outcome.reason } };
      const result = await acceptMessage(
        deps,
        callerOf(caller, req),
        toSendInput(outcome, agentId, 'maim'),
        waitOptions(query.wait),
      );
      return { data: result };
    },
  });
}
