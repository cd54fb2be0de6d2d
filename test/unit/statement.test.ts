import { combineStatements } from '../../src/db/statement';

describe('combineStatements', () => {
  it('returns a single statement unchanged', () => {
    const s = { text: 'UPDATE t SET a = $1 WHERE id = $2', values: [1, 'x'] };
    expect(combineStatements([s])).toEqual(s);
  });

  it('makes every statement but the last a CTE and renumbers their parameters', () => {
    const combined = combineStatements([
      { text: 'INSERT INTO a VALUES ($1, $2)', values: ['a1', 'a2'] },
      { text: 'INSERT INTO b VALUES ($1)', values: ['b1'] },
      { text: 'UPDATE c SET x = $2 WHERE id = $1', values: ['c1', 'c2'] },
    ]);
    expect(combined.text).toBe(
      'WITH w0 AS (INSERT INTO a VALUES ($1, $2)),\nw1 AS (INSERT INTO b VALUES ($3))\nUPDATE c SET x = $5 WHERE id = $4',
    );
    expect(combined.values).toEqual(['a1', 'a2', 'b1', 'c1', 'c2']);
  });

  it('renumbers multi-digit placeholders as numbers, not as text', () => {
    const first = { text: 'SELECT 1', values: Array.from({ length: 9 }, (_, i) => i) };
    const second = { text: 'SELECT $1, $10, $2', values: Array.from({ length: 10 }, (_, i) => `v${i}`) };
    const combined = combineStatements([first, second]);
    expect(combined.text.endsWith('SELECT $10, $19, $11')).toBe(true);
    expect(combined.values).toHaveLength(19);
  });

  it('refuses an empty list', () => {
    expect(() => combineStatements([])).toThrow(RangeError);
  });
});
