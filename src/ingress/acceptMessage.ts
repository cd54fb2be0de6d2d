import { createHash } from 'node:crypto';

import { tenantMetaOf } from '../auth/authenticate';
import { type Principal, SENDERS } from '../auth/principal';
import { agentScope, type HeaderSource, tenantScope } from '../auth/scope';
import { newId } from '../domain/ids';
import { createIsolationContext, isIdentifier } from '../domain/isolationContext';
import { effectiveSettingsOf, type TenantSettings } from '../domain/tenantSettings';
import { ForbiddenError, NotFoundError, ServiceUnavailableError, ValidationError } from '../errors';
import { streamEventPublication } from '../queues/messageEvents';
import { AnnouncementError, type HeartflowJobData, type Publication } from '../queues/tenantQueues';
import { Deadline, mapRedisError, withDeadline } from '../redis/availability';
import { admit } from './admission';
import { lookupAgent } from './agentLookup';
import { contentPolicyEnabled, findPolicyViolation } from './contentPolicy';
import { idempotencyIdOf, type IdempotencyRecord } from './idempotency';
import { seedKnownStreams } from './knownStreams';
import { readMessageStatus } from './messageLookup';
import type { Expectation } from './outcomeWaiters';
import type { IngressDeps, SendCaller, SendInput, SendResult } from './types';
import { awaitOutcome, expectOutcome, waitForOutcome } from './waitForOutcome';

/** Longest message, in characters after trimming (API.md). */
export const MAX_MESSAGE_CHARS = 8000;

/**
 * ms the dependencies of a send (tenant and agent lookups, admission, enqueue) may take in all
 * before the sender gets 503: a send never hangs on a Redis or PostgreSQL that is down or stuck.
 */
export const SEND_BUDGET_MS = 4000;

export interface AcceptOptions {
  /** Hold the answer until the message is final, at most this many ms (≤ 30000). */
  waitMs?: number;
}

function headerSource(caller: SendCaller): HeaderSource {
  return {
    header: (name) => {
      const n = name.toLowerCase();
      if (n === 'x-tenant-id') return caller.headers.tenantId;
      if (n === 'x-agent-id') return caller.headers.agentId;
      return undefined;
    },
  };
}

/** Who a credential bucket belongs to: one API key, one user, or all anonymous legacy callers. */
function credentialOf(caller: SendCaller): string {
  return `${caller.principal.kind}:${caller.principal.subject}`;
}

/**
 * Whether `text`, trimmed, has 1 to `MAX_MESSAGE_CHARS` characters (code points, as
 * `[...text].length` counts them), decided without making an array of them: only a text between
 * `MAX_MESSAGE_CHARS` and twice that many UTF-16 units needs its surrogate pairs counted.
 */
export function hasValidMessageLength(text: string): boolean {
  const trimmed = text.trim();
  if (trimmed.length === 0) return false;
  if (trimmed.length <= MAX_MESSAGE_CHARS) return true;
  if (trimmed.length > 2 * MAX_MESSAGE_CHARS) return false;
  let n = trimmed.length;
  for (let i = 0; i < trimmed.length - 1; i++) {
    const c = trimmed.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = trimmed.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n <= MAX_MESSAGE_CHARS;
}

function checkLength(message: string): void {
  if (!hasValidMessageLength(message)) {
    throw new ValidationError('invalid message', [
      { path: 'message', issue: `must be 1-${MAX_MESSAGE_CHARS} characters after trimming` },
    ]);
  }
}

/**
 * A stream id for a send that names none: the group's stream, or the sender's private stream, or
 * `default`. Stable for the same platform and ids; ids that would not make a valid identifier are
 * hashed.
 */
export function deriveChatStreamId(platform: string, sender: SendInput['senderInfo']): string {
  const make = (raw: string, suffix: string, kind: string) => {
    const candidate = `${platform}-${raw}${suffix}`;
    if (isIdentifier(candidate)) return candidate;
    const digest = createHash('sha256').update(raw).digest('hex').slice(0, 24);
    return `${platform.slice(0, 90)}-${kind}-${digest}`;
  };
  if (sender?.group_id) return make(sender.group_id, '', 'g');
  if (sender?.user_id) return make(sender.user_id, '-private', 'p');
  return 'default';
}

function resultOf(r: IdempotencyRecord, tenantId: string, duplicate: boolean): SendResult {
  return {
    message_id: r.message_id,
    tenant_id: tenantId,
    agent_id: r.agent_id,
    platform: r.platform,
    chat_stream_id: r.chat_stream_id,
    status: 'queued',
    duplicate,
  };
}

function jobData(
  input: SendInput,
  ids: IdempotencyRecord & { tenant_id: string },
  idempotencyId: string | undefined,
  receivedAt: number,
  waited: boolean,
): HeartflowJobData {
  const s = input.senderInfo;
  return {
    messageId: ids.message_id,
    tenantId: ids.tenant_id,
    agentId: ids.agent_id,
    platform: ids.platform,
    chatStreamId: ids.chat_stream_id,
    // Without a group the message is a one-to-one conversation with the bot.
    chatType: input.chatType ?? (s?.group_id ? 'group' : 'private'),
    content: input.message,
    clientMessageId: idempotencyId ?? null,
    replyTo: input.replyTo ?? null,
    sender: {
      userId: s?.user_id ?? null,
      nickname: s?.username ?? null,
      cardname: s?.cardname ?? null,
      groupId: s?.group_id ?? null,
      groupName: s?.group_name ?? null,
    },
    segments: input.segments ?? [],
    mentioned: input.mentioned ?? false,
    options: {
      enableMemory: input.options?.enable_memory ?? true,
      enableEmoji: input.options?.enable_emoji ?? true,
      priority: input.options?.priority ?? 'normal',
      interactive: waited || input.mentioned === true,
    },
    receivedAt,
    source: input.source ?? 'http',
  };
}

/** Where a send goes, once the tenant, its settings and the agent allow it. */
interface SendTarget {
  settings: TenantSettings;
  platform: string;
  chatStreamId: string;
}

/**
 * The first stage of a send: the tenant (active), its content policy, the agent (active), the
 * platform (allowed) and the chat stream; every identifier validated.
 */
async function resolveTarget(
  deps: IngressDeps,
  principal: Principal,
  input: SendInput,
  scope: { tenantId: string; agentId: string; inBudget: <T>(p: Promise<T>, what?: string) => Promise<T> },
): Promise<SendTarget> {
  const { tenantId, agentId, inBudget } = scope;
  // Authentication read the caller's own tenant a moment ago (same round trip as the revocation
  // check); a platform admin or a legacy caller sending for a tenant reads it here.
  const meta = tenantMetaOf(principal, tenantId) ?? (await inBudget(deps.tenants.get(tenantId)));
  if (!meta) throw new NotFoundError('TENANT_NOT_FOUND', 'no such tenant');
  if (meta.status !== 'active') {
    throw new ForbiddenError('the tenant is suspended', { details: { reason: 'tenant_suspended' } });
  }
  // The directory hands out one frozen meta per distinct cached value: parsed once per change.
  const settings = effectiveSettingsOf(meta.settings);

  const agent = await inBudget(lookupAgent(deps.db, tenantId, agentId, deps.clock.now()), 'PostgreSQL');
  if (!agent) throw new NotFoundError('AGENT_NOT_FOUND', 'no such agent', { agent_id: agentId });
  if (agent.status !== 'active') {
    throw new ForbiddenError('the agent is inactive', { details: { reason: 'agent_inactive' } });
  }
  const platform = input.platform ?? agent.defaultPlatform ?? 'default';
  if (settings.allowed_platforms.length > 0 && !settings.allowed_platforms.includes(platform)) {
    throw new ForbiddenError('the tenant does not allow this platform', {
      details: { reason: 'platform_not_allowed', platform },
    });
  }
  const chatStreamId = input.chatStreamId ?? deriveChatStreamId(platform, input.senderInfo);
  // Validates every dimension once more: adapters and derived ids come this way too.
  createIsolationContext({ tenantId, agentId, platform, chatStreamId });
  // The content policy in force for this chat (config category `content_policy`, on by default).
  const config = await inBudget(
    deps.configReader.effectiveConfig({ tenantId, agentId, platform, chatStreamId }),
  );
  if (contentPolicyEnabled(config.content_policy.values)) {
    const violation = findPolicyViolation(input.message);
    if (violation) {
      throw new ValidationError(
        'the message was rejected by the content policy',
        [{ path: 'message', issue: violation.description }],
        { reason: 'content_policy', rule: violation.rule },
      );
    }
  }
  return { settings, platform, chatStreamId };
}

/**
 * The last stage of a send: the job and its announcement (wake-up, `message.received`) in one
 * round trip. A failure before the job is stored gives the admission back (`release`).
 */
async function enqueueAdmitted(
  deps: IngressDeps,
  data: HeartflowJobData,
  received: Publication,
  release: () => Promise<unknown>,
  inBudget: <T>(p: Promise<T>) => Promise<T>,
): Promise<void> {
  try {
    await inBudget(deps.queues.enqueueHeartflow(data, [received]));
  } catch (err) {
    // Once the job is stored, a failure must not release the idempotency record, or a retry of
    // this send would enqueue the message a second time.
    if (!(err instanceof AnnouncementError)) {
      await withDeadline(release(), 1000, 'Redis').catch((releaseErr: unknown) =>
        deps.logger.warn({ err: releaseErr, message_id: data.messageId }, 'admission release failed'),
      );
    }
    throw err;
  }
}

/**
 * The ingress of one message, shared by `POST /chat/send`, its batch form and the adapters:
 * scope → tenant → content policy → agent → platform → one admission round trip to Redis
 * (rate limits, idempotency, quota, chat stream and queue limits) → BullMQ add (job id = message
 * id). It answers only once the job is in Redis; when Redis (or, on a cold agent cache,
 * PostgreSQL) is unreachable it fails with 503 within `SEND_BUDGET_MS`, never with a 200
 * for a message that was not stored. A repeat of an idempotent send answers with the first
 * message's id and `duplicate: true` and enqueues nothing.
 */
export async function acceptMessage(
  deps: IngressDeps,
  caller: SendCaller,
  input: SendInput,
  options: AcceptOptions = {},
): Promise<SendResult> {
  const { principal } = caller;
  if (!SENDERS.includes(principal.role)) throw new ForbiddenError('your role may not send messages');
  const headers = headerSource(caller);
  const { tenantId } = tenantScope(principal, headers, input.tenantId);
  const agentId = agentScope(principal, headers, input.agentId);
  checkLength(input.message);
  const idempotencyId = idempotencyIdOf(input.clientMessageId, caller.headers.idempotencyKey);
  // One timer for the whole send rather than one per step.
  const budget = new Deadline(Date.now() + SEND_BUDGET_MS);
  const inBudget = <T>(p: Promise<T>, what = 'Redis') => budget.race(p, what);
  let expecting: Promise<Expectation | undefined> | undefined;

  try {
    const { settings, platform, chatStreamId } = await resolveTarget(deps, principal, input, {
      tenantId,
      agentId,
      inBudget,
    });

    const now = deps.clock.now();
    const record: IdempotencyRecord = {
      message_id: newId('msg', now),
      agent_id: agentId,
      platform,
      chat_stream_id: chatStreamId,
    };
    const request = { tenantId, credential: credentialOf(caller), idempotencyId, record, settings, now };
    // `?wait`: listening for the outcome starts beside the admission round trip and is in place
    // before the job is enqueued, so the outcome cannot be missed and needs no status read.
    if (options.waitMs) expecting = expectOutcome(deps, tenantId, record.message_id);
    let admission = await inBudget(admit(deps, request));
    if (admission.kind === 'unseeded') {
      await inBudget(seedKnownStreams(deps.db, deps.redis, deps.keys, tenantId), 'PostgreSQL');
      admission = await inBudget(admit(deps, request));
    }

    if (admission.kind === 'duplicate') {
      const first = admission.record;
      const result = resultOf(first, tenantId, true);
      if (options.waitMs) return await waitForOutcome(deps, result, options.waitMs);
      // Best effort: the first send may still be enqueueing, or a dependency may be slow.
      const lookup = readMessageStatus(deps, createIsolationContext({ tenantId }), first.message_id);
      const current = await inBudget(lookup).catch(() => undefined);
      return current && current.status !== 'sent' ? { ...result, status: current.status } : result;
    }
    if (admission.kind !== 'admitted') throw new ServiceUnavailableError('chat stream registry not ready', 1);
    const waiting = expecting && (await inBudget(expecting));

    // Someone waits for this answer (`?wait`, or the bot was called by name): ahead of the
    // tenant's backlog of the same priority.
    const interactive = options.waitMs !== undefined && options.waitMs > 0;
    const data = jobData(input, { ...record, tenant_id: tenantId }, idempotencyId, now, interactive);
    const received = streamEventPublication(deps.keys, {
      type: 'message.received',
      message_id: record.message_id,
      tenant_id: tenantId,
      agent_id: agentId,
      platform,
      chat_stream_id: chatStreamId,
      at: new Date(now).toISOString(),
      content: input.message,
      sender_info: { ...input.senderInfo },
    });
    await enqueueAdmitted(deps, data, received, admission.release, inBudget);

    budget.clear();
    const result = resultOf(record, tenantId, false);
    return waiting && options.waitMs ? await awaitOutcome(deps, result, waiting, options.waitMs) : result;
  } catch (err) {
    throw mapRedisError(err);
  } finally {
    budget.clear();
    // Refused, failed or a duplicate: stop listening, also once a late subscription lands
    // (after a wait, awaitOutcome has cancelled it already; cancelling is idempotent).
    void expecting?.then((e) => e?.cancel());
  }
}
