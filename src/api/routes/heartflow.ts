import type { Request } from 'express';
import { z } from 'zod';

import { type Principal, SENDERS, TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { putConfig } from '../../configuration/configWrites';
import {
  heartflowAnalysis,
  resetStreamHeartflow,
  streamHeartflowState,
} from '../../db/repositories/heartflowAnalysis';
import {
  continuousLimitReached,
  detectEmotion,
  effectiveTalkValue,
  HeartflowConfigPatch,
  inQuietHours,
  stateAt,
  storedHeartflowConfig,
  storedHeartflowState,
  utcOffsetMinutes,
} from '../../domain/heartflow';
import { IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { NotFoundError } from '../../errors';
import { acceptMessage } from '../../ingress/acceptMessage';
import { route } from '../http/route';
import { readContext } from './chatAccess';
import { SendBody } from './chatSchemas';
import type { RouteContext } from './context';

const TAG = 'Heartflow';
const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const StreamParams = z.object({ chat_stream_id: Identifier });
/** How long `POST /heartflow/process` waits for the outcome by default, ms. */
const PROCESS_WAIT_MS = 30_000;

const ProcessBody = z.strictObject({
  message: z.strictObject({
    content: SendBody.shape.message,
    sender_info: SendBody.shape.sender_info,
    chat_stream_id: SendBody.shape.chat_stream_id,
  }),
  context: z
    .strictObject({
      agent_id: Identifier.optional(),
      platform: Identifier.optional(),
      chat_type: z.enum(['group', 'private']).optional(),
      /** The message mentions the bot (besides what its text says). */
      mentioned: z.boolean().optional(),
      enable_memory: z.boolean().optional(),
      /** ms to wait for the outcome (≤ 30000, default 30000); past it the answer says `processing`. */
      timeout_ms: z.number().int().min(1).max(PROCESS_WAIT_MS).optional(),
    })
    .optional(),
});

/** `60m`, `24h`, `7d`: at most 90 days. */
const PeriodQuery = z.strictObject({
  period: z
    .string()
    .regex(/^[1-9]\d{0,4}[mhd]$/, 'must be a number and m, h or d, e.g. 24h')
    .refine((p) => periodMs(p) <= 90 * 86_400_000, 'at most 90 days')
    .default('24h'),
});

function periodMs(period: string): number {
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[period.slice(-1) as 'm' | 'h' | 'd'];
  return Number(period.slice(0, -1)) * unit;
}

const ConfigView = z.object({
  chat_stream_id: z.string(),
  config: z.record(z.string(), z.unknown()),
  sources: z.record(z.string(), z.string()),
});

/** The six heartflow endpoints of API.md § Heartflow. */
export function heartflowRoutes({ router, registry, deps }: RouteContext): void {
  /** The stream (404 unless it exists for the caller: tenant, and an agent credential's agent). */
  async function streamOf(p: Principal, req: Request, chatStreamId: string) {
    const ctx = readContext(p, req);
    const stream = await deps.db.withTenant(ctx, (db) => streamHeartflowState(db, chatStreamId));
    if (!stream || (p.agentId !== undefined && stream.agent_id !== p.agentId)) {
      throw new NotFoundError('CHAT_STREAM_NOT_FOUND', 'no such chat stream', {
        chat_stream_id: chatStreamId,
      });
    }
    return { ctx, stream };
  }

  async function configView(p: Principal, req: Request, chatStreamId: string) {
    const { ctx, stream } = await streamOf(p, req, chatStreamId);
    const effective = await deps.configReader.effectiveConfig({
      tenantId: ctx.tenantId,
      agentId: stream.agent_id,
      platform: stream.platform,
      chatStreamId,
    });
    return { ctx, stream, heartflow: effective.heartflow };
  }

  route(router, registry, {
    method: 'post',
    path: '/heartflow/process',
    operationId: 'processHeartflowMessage',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [404, 429],
    summary: 'Run a message through the heartflow at high priority and answer with the outcome',
    tag: TAG,
    auth: SENDERS,
    body: ProcessBody,
    response: z.object({
      message_id: z.string(),
      chat_stream_id: z.string(),
      response: z.string().nullable(),
      emotion: z.string(),
      actions: z.array(z.unknown()),
      processing_details: z.record(z.string(), z.unknown()),
    }),
    handler: async ({ body, principal, req }) => {
      const context = body.context ?? {};
      const s = body.message.sender_info;
      const sent = await acceptMessage(
        deps,
        { principal, headers: { tenantId: req.header('x-tenant-id'), agentId: req.header('x-agent-id') } },
        {
          message: body.message.content,
          chatStreamId: body.message.chat_stream_id,
          agentId: context.agent_id,
          platform: context.platform,
          chatType: context.chat_type,
          mentioned: context.mentioned,
          senderInfo: s && {
            user_id: s.user_id ?? undefined,
            username: s.username ?? undefined,
            cardname: s.cardname ?? undefined,
            group_id: s.group_id ?? undefined,
            group_name: s.group_name ?? undefined,
          },
          options: { priority: 'high', enable_memory: context.enable_memory },
          source: 'http',
        },
        { waitMs: context.timeout_ms ?? PROCESS_WAIT_MS },
      );
      const { rows } = await deps.db.withTenant(readContext(principal, req), (db) =>
        db.query<{ reasoning: string | null; action_data: Record<string, unknown> }>(
          'SELECT reasoning, action_data FROM action_records WHERE tenant_id = $1 AND message_id = $2',
          [db.ctx.tenantId, sent.message_id],
        ),
      );
      const action = rows[0];
      const stored = action?.action_data.emotion;
      const emotion =
        typeof stored === 'string' ? stored : (detectEmotion(body.message.content) ?? 'neutral');
      return {
        data: {
          message_id: sent.message_id,
          chat_stream_id: sent.chat_stream_id,
          response: sent.response ?? null,
          emotion,
          actions: sent.actions_taken ?? [],
          processing_details: {
            status: sent.status,
            agent_id: sent.agent_id,
            platform: sent.platform,
            reason: action?.reasoning ?? null,
            reply_probability: action?.action_data.probability ?? null,
            interest: action?.action_data.interest ?? null,
            queue_wait_ms: sent.queue_wait_ms ?? null,
            processing_time_ms: sent.processing_time_ms ?? null,
            tokens_used: sent.tokens_used ?? null,
            error: sent.error ?? null,
          },
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/heartflow/status/:chat_stream_id',
    operationId: 'getHeartflowStatus',
    headers: ['X-Tenant-ID'],
    errors: [404],
    summary: "A chat stream's heartflow state now: state, willingness, talk value in force",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: StreamParams,
    response: z.object({
      chat_stream_id: z.string(),
      state: z.enum(['absent', 'normal', 'focused']),
      willingness: z.number(),
      talk_value: z.number(),
      messages_since_reply: z.number().int(),
      last_reply_at: z.string().nullable(),
      interest: z.number(),
      no_reply_until_call: z.boolean(),
      quiet_hours_active: z.boolean(),
      /** Batches answered in a row; at `max_continuous_replies` only mentions are answered. */
      continuous_replies: z.number().int(),
      continuous_limit_reached: z.boolean(),
    }),
    handler: async ({ params, principal, req }) => {
      const { stream, heartflow } = await configView(principal, req, params.chat_stream_id);
      const now = deps.clock.now();
      const config = storedHeartflowConfig(heartflow.values);
      const offset = utcOffsetMinutes(config.timezone, now);
      const state = stateAt(storedHeartflowState(stream.state, now), now);
      return {
        data: {
          chat_stream_id: params.chat_stream_id,
          state: state.state,
          willingness: state.willingness,
          talk_value: effectiveTalkValue(config, now, {
            utcOffsetMinutes: offset,
            chatType: stream.chat_type,
          }),
          messages_since_reply: state.messagesSinceReply,
          last_reply_at: state.lastReplyAt === undefined ? null : new Date(state.lastReplyAt).toISOString(),
          interest: state.interest,
          no_reply_until_call: state.noReplyUntilCall,
          quiet_hours_active: inQuietHours(config, now, offset),
          continuous_replies: state.continuousReplies,
          continuous_limit_reached: continuousLimitReached(state, config),
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/heartflow/config/:chat_stream_id',
    operationId: 'getHeartflowConfig',
    headers: ['X-Tenant-ID'],
    errors: [404],
    summary: "A chat's heartflow settings in force (config category heartflow) and where each comes from",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: StreamParams,
    response: ConfigView,
    handler: async ({ params, principal, req }) => {
      const { heartflow } = await configView(principal, req, params.chat_stream_id);
      return {
        data: { chat_stream_id: params.chat_stream_id, config: heartflow.values, sources: heartflow.sources },
      };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/heartflow/config/:chat_stream_id',
    operationId: 'putHeartflowConfig',
    headers: ['X-Tenant-ID'],
    errors: [404],
    summary: "Set a chat's heartflow settings (chat scope of config category heartflow; a new version)",
    tag: TAG,
    auth: TENANT_WRITERS,
    params: StreamParams,
    body: HeartflowConfigPatch,
    response: ConfigView.extend({ version: z.number().int() }),
    handler: async ({ params, body, principal, req }) => {
      const { ctx } = await streamOf(principal, req, params.chat_stream_id);
      const written = await putConfig(
        { db: deps.db, sealer: deps.secrets, reader: deps.configReader, tenants: deps.tenants },
        { tenantId: ctx.tenantId, category: 'heartflow', scope: 'chat', chatStreamId: params.chat_stream_id },
        body,
        principal.subject,
      );
      const { heartflow } = await configView(principal, req, params.chat_stream_id);
      return {
        data: {
          chat_stream_id: params.chat_stream_id,
          version: written.version,
          config: heartflow.values,
          sources: heartflow.sources,
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/heartflow/analysis/:chat_stream_id',
    operationId: 'getHeartflowAnalysis',
    headers: ['X-Tenant-ID'],
    errors: [404],
    summary:
      "A chat's heartflow over a period: messages, replies, interest, latency percentiles, actions, emotions",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: StreamParams,
    query: PeriodQuery,
    response: z.object({
      chat_stream_id: z.string(),
      period: z.string(),
      messages: z.number().int(),
      replies: z.number().int(),
      reply_rate: z.number(),
      avg_interest: z.number().nullable(),
      latency_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
      actions_by_type: z.record(z.string(), z.number()),
      emotions: z.record(z.string(), z.number()),
    }),
    handler: async ({ params, query, principal, req }) => {
      const { ctx } = await streamOf(principal, req, params.chat_stream_id);
      const since = new Date(deps.clock.now() - periodMs(query.period));
      const a = await deps.db.withTenant(ctx, (db) => heartflowAnalysis(db, params.chat_stream_id, since));
      return {
        data: {
          chat_stream_id: params.chat_stream_id,
          period: query.period,
          messages: a.messages,
          replies: a.replies,
          reply_rate: a.messages === 0 ? 0 : a.replies / a.messages,
          avg_interest: a.avg_interest,
          latency_ms: { p50: a.p50, p95: a.p95 },
          actions_by_type: a.actions_by_type,
          emotions: a.emotions,
        },
      };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/heartflow/reset/:chat_stream_id',
    operationId: 'resetHeartflow',
    headers: ['X-Tenant-ID'],
    errors: [404],
    summary: "Forget a chat's heartflow state (willingness, focus, waiting for a call); its settings stay",
    tag: TAG,
    auth: TENANT_WRITERS,
    params: StreamParams,
    response: z.object({ chat_stream_id: z.string(), reset: z.literal(true) }),
    handler: async ({ params, principal, req }) => {
      const { ctx } = await streamOf(principal, req, params.chat_stream_id);
      await deps.db.withTenant(ctx, (db) => resetStreamHeartflow(db, params.chat_stream_id));
      return { data: { chat_stream_id: params.chat_stream_id, reset: true as const } };
    },
  });
}
