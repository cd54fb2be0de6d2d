import { createIsolationContext } from '../domain/isolationContext';
import { isFinalStatus, type MessageDoneEvent } from '../queues/messageEvents';
import { type MessageStatusView, readMessageStatus } from './messageLookup';
import type { Expectation } from './outcomeWaiters';
import type { IngressDeps, SendResult } from './types';

/** Longest `?wait` a client may ask for, ms (API.md). */
export const MAX_WAIT_MS = 30_000;

type Outcome = MessageDoneEvent | MessageStatusView;

function withOutcome(result: SendResult, o: Outcome): SendResult {
  if (o.status === 'sent') return result;
  const merged: SendResult = { ...result, status: o.status };
  if (!isFinalStatus(o.status)) return merged;
  return {
    ...merged,
    response: o.response ?? null,
    actions_taken: o.actions_taken ?? [],
    tokens_used: o.tokens_used ?? null,
    queue_wait_ms: o.queue_wait_ms ?? null,
    processing_time_ms: o.processing_time_ms ?? null,
    error: o.error ?? null,
  };
}

function readStatus(deps: IngressDeps, result: SendResult): Promise<MessageStatusView | undefined> {
  const ctx = createIsolationContext({ tenantId: result.tenant_id });
  return readMessageStatus(deps, ctx, result.message_id).catch((err: unknown) => {
    deps.logger.warn({ err, message_id: result.message_id }, 'status read while waiting failed');
    return undefined;
  });
}

/**
 * Registers interest in a message's outcome before its job is enqueued (`acceptMessage` does so
 * beside the admission round trip); undefined when Redis cannot subscribe, and the send then
 * answers without waiting rather than fail.
 */
export async function expectOutcome(
  deps: IngressDeps,
  tenantId: string,
  messageId: string,
): Promise<Expectation | undefined> {
  try {
    return await deps.outcomes.expect(tenantId, messageId);
  } catch (err) {
    deps.logger.warn({ err, message_id: messageId }, 'cannot wait for the outcome');
    return undefined;
  }
}

/**
 * Holds an accepted send until its message is final (`replied | no_reply | failed`) or `waitMs`
 * pass, then answers with the outcome, or with the current status read from the database. The
 * expectation was registered before the job was enqueued, so the outcome cannot be missed and the
 * database is read only on timeout. The message is accepted either way: when Redis or
 * PostgreSQL fail while waiting, the send's own result is returned rather than an error that
 * would invite a resend.
 */
export async function awaitOutcome(
  deps: IngressDeps,
  result: SendResult,
  expectation: Expectation,
  waitMs: number,
  options: { readFirst?: boolean } = {},
): Promise<SendResult> {
  const deadline = Date.now() + Math.min(Math.max(0, waitMs), MAX_WAIT_MS);
  let timer: NodeJS.Timeout | undefined;
  try {
    if (options.readFirst) {
      const current = await readStatus(deps, result);
      if (current && isFinalStatus(current.status)) return withOutcome(result, current);
    }
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    });
    const event = await Promise.race([expectation.outcome, timedOut]);
    if (event) return withOutcome(result, event);
    const latest = await readStatus(deps, result);
    return latest ? withOutcome(result, latest) : result;
  } finally {
    clearTimeout(timer);
    expectation.cancel();
  }
}

/**
 * `?wait` for a message that may already be final (a duplicate send): subscribes first, then
 * reads the status, so an outcome published in between is not missed.
 */
export async function waitForOutcome(
  deps: IngressDeps,
  result: SendResult,
  waitMs: number,
): Promise<SendResult> {
  const expectation = await expectOutcome(deps, result.tenant_id, result.message_id);
  if (!expectation) return result;
  return awaitOutcome(deps, result, expectation, waitMs, { readFirst: true });
}
