import { RefusalLog } from '../../src/api/http/refusalLog';
import { createLogger } from '../../src/logger';

interface Line {
  level: number;
  msg: string;
  tenant_id: string | null;
  refused: number;
  limits: Record<string, number>;
  over_ms: number;
}

function captured() {
  const lines: Line[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
  });
  return { lines, logger };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('RefusalLog', () => {
  it('writes one line per tenant with its refusals by limit, and over how long they came', () => {
    const { lines, logger } = captured();
    let now = 1_000;
    const log = new RefusalLog(logger, 10_000, () => now);
    log.note('a', 'credential');
    now += 400;
    log.note('a', 'credential');
    log.note('b', 'in_flight');
    log.note('a', 'overload');
    log.note(undefined, 'credential');
    now += 600;
    log.flush();
    expect(
      lines.map(({ level, msg, tenant_id, refused, limits, over_ms }) => ({
        level,
        msg,
        tenant_id,
        refused,
        limits,
        over_ms,
      })),
    ).toEqual([
      {
        level: 40,
        msg: 'requests refused',
        tenant_id: 'a',
        refused: 3,
        limits: { credential: 2, overload: 1 },
        over_ms: 1000,
      },
      {
        level: 40,
        msg: 'requests refused',
        tenant_id: 'b',
        refused: 1,
        limits: { in_flight: 1 },
        over_ms: 1000,
      },
      {
        level: 40,
        msg: 'requests refused',
        tenant_id: null,
        refused: 1,
        limits: { credential: 1 },
        over_ms: 1000,
      },
    ]);
    // A new interval starts empty.
    lines.length = 0;
    log.flush();
    expect(lines).toEqual([]);
  });

  it('writes the lines an interval after its first refusal, on its own', () => {
    jest.useFakeTimers();
    const { lines, logger } = captured();
    const log = new RefusalLog(logger, 10_000);
    log.note('a', 'credential');
    jest.advanceTimersByTime(9_000);
    log.note('a', 'credential');
    expect(lines).toHaveLength(0);
    jest.advanceTimersByTime(1_000);
    expect(lines).toEqual([expect.objectContaining({ tenant_id: 'a', refused: 2 })]);
    // No refusals since: no timer, no line.
    jest.advanceTimersByTime(60_000);
    expect(lines).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});
