import { refusalDelayMs } from '../../src/api/envelope';
import { RateLimitError, ServiceUnavailableError, ValidationError } from '../../src/errors';

describe('refusalDelayMs', () => {
  const rate = new RateLimitError('RATE_LIMIT_EXCEEDED', 'credential rate limit exceeded', 1);

  it('holds a refusal for rate or load a random share of the jitter', () => {
    expect(refusalDelayMs(rate, 1000, () => 0)).toBe(0);
    expect(refusalDelayMs(rate, 1000, () => 0.25)).toBe(250);
    expect(refusalDelayMs(rate, 1000, () => 0.9999)).toBe(999);
  });

  it('sends quota refusals, other errors and everything with no jitter at once', () => {
    const quota = new RateLimitError('QUOTA_EXCEEDED', 'daily message quota exceeded', 3600);
    expect(refusalDelayMs(quota, 1000, () => 0.5)).toBe(0);
    expect(refusalDelayMs(new ServiceUnavailableError('down', 1), 1000, () => 0.5)).toBe(0);
    expect(refusalDelayMs(new ValidationError('bad', []), 1000, () => 0.5)).toBe(0);
    expect(refusalDelayMs(rate, 0, () => 0.5)).toBe(0);
  });
});
