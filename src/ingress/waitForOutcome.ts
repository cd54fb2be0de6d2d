import type { Dependencies } from '../api/dependencies';
import { createIsolationContext } from '../domain/isolationContext';
import { isFinalStatus, type MessageDoneEvent, parseMessageDone } from './messageEvents';
import { type MessageStatusView, readMessageStatus } from './messageLookup';
import type { SendResult } from './types';

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

/**
 * Holds an accepted send until its message is final (`replied | no_reply | failed`) or `waitMs`
 * pass, then answers with the outcome or the current status. It subscribes to the tenant's
 * `messageDone` channel first and reads the status second, so an outcome published in between is
 * not missed. The message is accepted either way: when Redis or PostgreSQL fail while waiting,
 * the send's own result is returned rather than an error that would invite a resend.
 */
export async function waitForOutcome(
  deps: Dependencies,
  result: SendResult,
  waitMs: number,
): Promise<SendResult> {
  const deadline = Date.now() + Math.min(Math.max(0, waitMs), MAX_WAIT_MS);
  const ctx = createIsolationContext({ tenantId: result.tenant_id });
  const read = () =>
    readMessageStatus(deps, ctx, result.message_id).catch((err: unknown) => {
      deps.logger.warn({ err, message_id: result.message_id }, 'status read while waiting failed');
      return undefined;
    });

  let announce: (e: MessageDoneEvent) => void = () => undefined;
  const announced = new Promise<MessageDoneEvent>((resolve) => (announce = resolve));
  let unsubscribe: () => void;
  try {
    unsubscribe = await deps.channels.subscribe(deps.keys.messageDone(result.tenant_id), (raw) => {
      const event = parseMessageDone(raw);
      if (event?.message_id === result.message_id) announce(event);
    });
  } catch (err) {
    deps.logger.warn({ err, message_id: result.message_id }, 'cannot wait for the outcome');
    return result;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const current = await read();
    if (current && isFinalStatus(current.status)) return withOutcome(result, current);
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    });
    const event = await Promise.race([announced, timedOut]);
    if (event) return withOutcome(result, event);
    const latest = await read();
    return latest ? withOutcome(result, latest) : result;
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}
