import { UnrecoverableError } from 'bullmq';

import { UnrecoverableJobError } from '../errors';

/** Where a job stands when its processor threw: attempts already made, and allowed in all. */
export interface AttemptCount {
  /** Attempts that ended before this one (BullMQ's `attemptsMade` while the job runs). */
  attemptsMade: number;
  /** `opts.attempts` of the job (BullMQ's default is 1). */
  attempts: number;
}

export type RetryDecision = 'retry' | 'fail';

/**
 * Errors that fail a job at once, whatever attempts it has left: `UnrecoverableJobError` is what
 * processors throw (bad payload, a job in another tenant's queue, a refusal that will not change);
 * BullMQ's own `UnrecoverableError` is honoured too, as BullMQ itself would.
 */
const FINAL_ERRORS: readonly (abstract new (...args: never[]) => Error)[] = [
  UnrecoverableJobError,
  UnrecoverableError,
];

/**
 * The one decision on a thrown error: another attempt (after the job's backoff) or failed for
 * good. Everything not named final is retried while attempts are left; errors that a processor
 * means to end the job quietly (a spent quota, a failed LLM call) it catches itself.
 */
export function retryDecision(error: unknown, count: AttemptCount): RetryDecision {
  if (FINAL_ERRORS.some((final) => error instanceof final)) return 'fail';
  return count.attemptsMade + 1 < count.attempts ? 'retry' : 'fail';
}

/**
 * The error to hand to BullMQ's `moveToFailed`, which retries anything but its own
 * `UnrecoverableError`: a failure decided final becomes one, with the original message and stack
 * (the job's `failedReason` and stack trace are unchanged).
 */
export function asBullmqFailure(error: Error, decision: RetryDecision): Error {
  if (decision === 'retry' || error instanceof UnrecoverableError) return error;
  const final = new UnrecoverableError(error.message);
  final.stack = error.stack ?? final.stack;
  return final;
}
