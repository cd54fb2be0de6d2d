import { UnrecoverableError } from 'bullmq';

import { ServiceUnavailableError, UnrecoverableJobError, ValidationError } from '../../src/errors';
import { asBullmqFailure, type RetryDecision, retryDecision } from '../../src/queues/retryDecision';

describe('the retry decision for a thrown error', () => {
  const cases: [string, unknown, number, number, RetryDecision][] = [
    // what was thrown, attempts made before this one, attempts allowed, decision
    ['a plain Error with attempts left', new Error('boom'), 0, 3, 'retry'],
    ['a plain Error on the second of three attempts', new Error('boom'), 1, 3, 'retry'],
    ['a plain Error on the last attempt', new Error('boom'), 2, 3, 'fail'],
    ['a plain Error on a job with one attempt', new Error('boom'), 0, 1, 'fail'],
    [
      'a 503 (Redis or PostgreSQL away) with attempts left',
      new ServiceUnavailableError('away'),
      0,
      3,
      'retry',
    ],
    ['a ValidationError with attempts left (not named final)', new ValidationError('bad'), 0, 3, 'retry'],
    ['a thrown non-Error with attempts left', 'text', 0, 3, 'retry'],
    ['UnrecoverableJobError with attempts left', new UnrecoverableJobError('bad payload'), 0, 5, 'fail'],
    ["BullMQ's UnrecoverableError with attempts left", new UnrecoverableError('stop'), 0, 5, 'fail'],
  ];

  it.each(cases)('%s', (_what, error, attemptsMade, attempts, expected) => {
    expect(retryDecision(error, { attemptsMade, attempts })).toBe(expected);
  });

  it('hands BullMQ a failure it will not retry, with the original message and stack', () => {
    const error = new UnrecoverableJobError('job 1 of tenant a names tenant b');
    const handed = asBullmqFailure(error, 'fail');
    expect(handed).toBeInstanceOf(UnrecoverableError);
    expect(handed.message).toBe(error.message);
    expect(handed.stack).toBe(error.stack);
  });

  it('hands BullMQ the error itself when it is to be retried, or already BullMQ-final', () => {
    const error = new Error('boom');
    expect(asBullmqFailure(error, 'retry')).toBe(error);
    const final = new UnrecoverableError('stop');
    expect(asBullmqFailure(final, 'fail')).toBe(final);
  });
});
