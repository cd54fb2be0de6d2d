/** One SQL statement with its parameters, `$1`… numbered from 1. */
export interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/**
 * Several statements as ONE: every statement but the last becomes a data-modifying CTE of the
 * last, so a unit of work's writes cost one round trip instead of one each. PostgreSQL runs every
 * CTE exactly once, all against the same snapshot: the parts must not depend on each other's
 * effects (foreign keys are checked at the end of the statement, so a row a part inserts may be
 * referenced by another part's row). Parameters are renumbered; the parts' SQL must use `$n`
 * only as placeholders (no dollar-quoted strings). The result's rows are the last statement's.
 */
export function combineStatements(parts: readonly Statement[]): Statement {
  if (parts.length === 0) throw new RangeError('combineStatements needs at least one statement');
  const values: unknown[] = [];
  const texts = parts.map((p) => {
    const offset = values.length;
    values.push(...p.values);
    return offset === 0 ? p.text : p.text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
  });
  const last = texts.pop()!;
  if (texts.length === 0) return { text: last, values };
  const ctes = texts.map((t, i) => `w${i} AS (${t})`).join(',\n');
  return { text: `WITH ${ctes}\n${last}`, values };
}
