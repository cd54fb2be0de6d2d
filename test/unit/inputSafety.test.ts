import { jsonInputProblem } from '../../src/api/http/inputSafety';

describe('jsonInputProblem', () => {
  it('accepts ordinary JSON, including __proto__ as a plain field', () => {
    expect(jsonInputProblem({ a: [1, 'x', { b: null }], c: true })).toBeUndefined();
    expect(jsonInputProblem(JSON.parse('{"__proto__": {"x": 1}}'))).toBeUndefined();
  });

  it('names the path of a NUL inside nested objects and arrays', () => {
    expect(jsonInputProblem({ metadata: { tags: ['ok', 'bad\u0000'] } })).toEqual({
      path: 'metadata.tags.1',
      issue: 'contains a NUL character (U+0000)',
    });
    expect(jsonInputProblem('top\u0000')).toEqual({
      path: 'body',
      issue: 'contains a NUL character (U+0000)',
    });
  });

  it('names the object holding a bad field name, and a lone surrogate', () => {
    expect(jsonInputProblem({ a: { ['k\u0000']: 1 } })?.path).toBe('a');
    expect(jsonInputProblem({ a: { ['k\u0000']: 1 } })?.issue).toMatch(/^a field name contains a NUL/);
    expect(jsonInputProblem({ s: 'x\ud800y' })).toEqual({
      path: 's',
      issue: 'contains a lone UTF-16 surrogate (not valid Unicode text)',
    });
    expect(jsonInputProblem({ s: '😀' })).toBeUndefined();
  });

  it('stops at the depth limit, naming where', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 5; i++) deep = { n: deep };
    expect(jsonInputProblem(deep, 3)).toEqual({ path: 'n.n.n', issue: 'nested deeper than 3 levels' });
    expect(jsonInputProblem(deep, 6)).toBeUndefined();
  });
});
