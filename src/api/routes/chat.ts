import { type Principal, SENDERS, TENANT_MEMBERS } from '../../auth/principal';
import { historyPage, type HistoryRow } from '../../db/repositories/messages';
import { MaiHiveError, NotFoundError, RateLimitError, ValidationError } from '../../errors';
import { acceptMessage } from '../../ingress/acceptMessage';
import { readMessage, readMessageStatus, viewFromRow } from '../../ingress/messageLookup';
import type { SendCaller } from '../../ingress/types';
import { parseWith, route } from '../http/route';
import { readContext, requireChatStream } from './chatAccess';
import { chatEventsRoutes } from './chatEvents';
import {
  BatchBody,
  BatchData,
  HistoryData,
  HistoryQuery,
  MessageData,
  MessageIdParams,
  SendBody,
  SendData,
  StatusData,
  StreamParams,
  toSendInput,
  WaitQuery,
} from './chatSchemas';
import type { RouteContext } from './context';

/** Batch items accepted at once: enough to overlap Redis round trips, few enough to stay fair. */
const BATCH_CONCURRENCY = 8;

function callerOf(principal: Principal, header: (name: string) => string | undefined, idempotent: boolean) {
  const caller: SendCaller = {
    principal,
    headers: {
      tenantId: header('x-tenant-id'),
      agentId: header('x-agent-id'),
      idempotencyKey: idempotent ? header('idempotency-key') : undefined,
    },
  };
  return caller;
}

/** An error as a batch item reports it: the envelope's `error` object. */
function itemError(err: unknown): { code: string; message: string; details: Record<string, unknown> } {
  if (err instanceof MaiHiveError) {
    const retry = 'retryAfterSeconds' in err ? { retry_after_seconds: err.retryAfterSeconds } : {};
    return { code: err.code, message: err.message, details: { ...err.details, ...retry } };
  }
  return { code: 'INTERNAL_ERROR', message: 'internal error', details: {} };
}

/** `?before` cursors: base64url JSON of the oldest row's exact `created_at` and id. */
function encodeCursor(row: HistoryRow): string {
  return Buffer.from(JSON.stringify([row.position_at, row.message_id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; messageId: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2) {
      const [createdAt, messageId] = value as unknown[];
      if (
        typeof createdAt === 'string' &&
        typeof messageId === 'string' &&
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/.test(createdAt)
      ) {
        return { createdAt, messageId };
      }
    }
  } catch {
    // fall through to the validation error
  }
  throw new ValidationError('invalid cursor', [
    { path: 'before', issue: 'not a cursor returned by this API' },
  ]);
}

export function chatRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;

  route(router, registry, {
    method: 'post',
    path: '/chat/send',
    operationId: 'sendMessage',
    headers: ['X-Tenant-ID', 'X-Agent-ID', 'Idempotency-Key'],
    summary: 'Send a message (answers once it is durably queued; ?wait holds for the outcome)',
    tag: 'Chat',
    auth: SENDERS,
    query: WaitQuery,
    body: SendBody,
    response: SendData,
    handler: async ({ body, query, principal, req }) => {
      const caller = callerOf(principal, (n) => req.header(n), true);
      const data = await acceptMessage(
        deps,
        caller,
        toSendInput(body),
        query.wait ? { waitMs: query.wait } : {},
      );
      return { data };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/chat/send/batch',
    operationId: 'sendMessageBatch',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'Send up to 100 messages; each succeeds or fails on its own',
    tag: 'Chat',
    auth: SENDERS,
    body: BatchBody,
    response: BatchData,
    handler: async ({ body, principal, req }) => {
      // Idempotency-Key names one send; batch items use their own client_message_id.
      const caller = callerOf(principal, (n) => req.header(n), false);
      const results: unknown[] = new Array(body.messages.length);
      let next = 0;
      // Once the tenant's rate, quota or queue refused an item, the rest would be refused too:
      // they get the same answer without a round trip each.
      let refusal: ReturnType<typeof itemError> | undefined;
      const worker = async () => {
        while (next < body.messages.length) {
          const i = next++;
          if (refusal) {
            results[i] = { success: false, error: refusal };
            continue;
          }
          try {
            const item = parseWith(SendBody, body.messages[i], 'body');
            results[i] = { success: true, data: await acceptMessage(deps, caller, toSendInput(item)) };
          } catch (err) {
            if (!(err instanceof MaiHiveError)) deps.logger.error({ err }, 'batch item failed');
            results[i] = { success: false, error: itemError(err) };
            if (err instanceof RateLimitError) refusal ??= itemError(err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, body.messages.length) }, worker));
      return { data: { results } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/chat/messages/:message_id/status',
    operationId: 'getMessageStatus',
    headers: ['X-Tenant-ID'],
    summary: "A message's processing status and outcome",
    tag: 'Chat',
    auth: TENANT_MEMBERS,
    params: MessageIdParams,
    response: StatusData,
    handler: async ({ params, principal, req }) => {
      const status = await readMessageStatus(deps, readContext(principal, req), params.message_id);
      if (!status) throw new NotFoundError('NOT_FOUND', 'no such message');
      return { data: status };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/chat/messages/:message_id',
    operationId: 'getMessage',
    headers: ['X-Tenant-ID'],
    summary: 'A message with its reply (or its queued job while not stored yet)',
    tag: 'Chat',
    auth: TENANT_MEMBERS,
    params: MessageIdParams,
    response: MessageData,
    handler: async ({ params, principal, req }) => {
      const message = await readMessage(deps, readContext(principal, req), params.message_id);
      if (!message) throw new NotFoundError('NOT_FOUND', 'no such message');
      return { data: message };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/chat/:chat_stream_id/messages',
    operationId: 'listStreamMessages',
    headers: ['X-Tenant-ID'],
    summary: "A chat stream's history, newest first, with a `before` cursor",
    tag: 'Chat',
    auth: TENANT_MEMBERS,
    params: StreamParams,
    query: HistoryQuery,
    response: HistoryData,
    handler: async ({ params, query, principal, req }) => {
      const context = readContext(principal, req);
      const before = query.before === undefined ? undefined : decodeCursor(query.before);
      await requireChatStream(deps, context, params.chat_stream_id);
      // One row more than asked tells whether an older page exists.
      const rows = await deps.db.withTenant(context, (db) =>
        historyPage(db, params.chat_stream_id, query.limit + 1, before),
      );
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        data: {
          chat_stream_id: params.chat_stream_id,
          messages: page.map(viewFromRow),
          next_before: rows.length > query.limit && last ? encodeCursor(last) : null,
        },
      };
    },
  });

  chatEventsRoutes(ctx);
}
