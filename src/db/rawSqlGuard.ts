import type { IsolationContext } from '../domain/isolationContext';
import { IsolationViolationError, ValidationError } from '../errors';

/**
 * Checks a raw SQL statement before it runs inside a tenant unit of work. The statement is parsed
 * with PostgreSQL's own parser (libpg-query, compiled to wasm), so comments, quoting and casing
 * cannot hide anything. Allowed: exactly one SELECT / INSERT / UPDATE / DELETE. Refused with
 * `IsolationViolationError`: any other statement (SET, RESET, DISCARD, SET ROLE, SET SESSION
 * AUTHORIZATION, DDL, TRUNCATE, transaction control, COPY, …), calls to functions that change
 * settings or reach outside the database, `SELECT … INTO`, and predicates or inserted values that
 * name another tenant's id. Everything that passes still runs under row-level security: this check
 * is a second wall and a clear error, not the isolation itself.
 */

const ALLOWED_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

const DENIED_FUNCTIONS = new Set([
  'set_config',
  'pg_reload_conf',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'lo_import',
  'lo_export',
  'dblink',
  'dblink_exec',
  'dblink_connect',
  'pg_advisory_lock',
  'pg_advisory_xact_lock',
  'pg_try_advisory_lock',
]);

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function violation(reason: string, extra: Record<string, unknown> = {}): IsolationViolationError {
  return new IsolationViolationError(`raw SQL refused: ${reason}`, { details: { reason, ...extra } });
}

/** Depth-first walk over every node object of the parse tree, with its node type. */
function* walk(value: unknown): Generator<[string, Node]> {
  if (Array.isArray(value)) {
    for (const item of value) yield* walk(item);
    return;
  }
  if (!isNode(value)) return;
  for (const [key, child] of Object.entries(value)) {
    if (/^[A-Z]/.test(key) && isNode(child)) yield [key, child];
    yield* walk(child);
  }
}

function stringsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const s = isNode(item) && isNode(item.String) ? item.String.sval : undefined;
    return typeof s === 'string' ? [s] : [];
  });
}

function isTenantColumn(node: unknown): boolean {
  if (!isNode(node) || !isNode(node.ColumnRef)) return false;
  return stringsOf(node.ColumnRef.fields).at(-1) === 'tenant_id';
}

/** The literal values an expression can stand for: constants, casts of constants, bound parameters. */
function literalValues(node: unknown, params: readonly unknown[]): unknown[] {
  if (!isNode(node)) return [];
  if (isNode(node.TypeCast)) return literalValues(node.TypeCast.arg, params);
  if (isNode(node.A_Const)) {
    const sval = node.A_Const.sval;
    return isNode(sval) && typeof sval.sval === 'string' ? [sval.sval] : [];
  }
  if (isNode(node.ParamRef) && typeof node.ParamRef.number === 'number') {
    const value = params[node.ParamRef.number - 1];
    return Array.isArray(value) ? value : [value];
  }
  if (isNode(node.List)) return (node.List.items as unknown[]).flatMap((i) => literalValues(i, params));
  if (isNode(node.A_ArrayExpr)) {
    return ((node.A_ArrayExpr.elements as unknown[] | undefined) ?? []).flatMap((i) =>
      literalValues(i, params),
    );
  }
  return [];
}

function checkForeignTenant(values: unknown[], ctx: IsolationContext): void {
  // Anything that is not the context's own id string (another id, a number, an object) is foreign.
  const foreign = values.find((v) => v !== undefined && v !== null && v !== ctx.tenantId);
  if (foreign !== undefined) throw violation('names another tenant', { tenant_id: JSON.stringify(foreign) });
}

function checkNode(type: string, node: Node, ctx: IsolationContext, params: readonly unknown[]): void {
  switch (type) {
    case 'FuncCall': {
      const name = stringsOf(node.funcname).at(-1)?.toLowerCase();
      if (name && DENIED_FUNCTIONS.has(name)) throw violation(`function ${name} is not allowed`);
      return;
    }
    case 'A_Expr': {
      // tenant_id = 'x', 'x' = tenant_id, tenant_id IN (...), tenant_id = ANY($1)
      if (isTenantColumn(node.lexpr)) checkForeignTenant(literalValues(node.rexpr, params), ctx);
      if (isTenantColumn(node.rexpr)) checkForeignTenant(literalValues(node.lexpr, params), ctx);
      return;
    }
    case 'SelectStmt':
      if (node.intoClause !== undefined) throw violation('SELECT INTO creates a table');
      return;
    case 'InsertStmt': {
      const cols = Array.isArray(node.cols) ? node.cols : [];
      const index = cols.findIndex(
        (c) => isNode(c) && isNode(c.ResTarget) && c.ResTarget.name === 'tenant_id',
      );
      const select =
        isNode(node.selectStmt) && isNode(node.selectStmt.SelectStmt) ? node.selectStmt.SelectStmt : {};
      if (index >= 0 && Array.isArray(select.valuesLists)) {
        for (const row of select.valuesLists as unknown[]) {
          const items = isNode(row) && isNode(row.List) ? (row.List.items as unknown[]) : [];
          checkForeignTenant(literalValues(items[index], params), ctx);
        }
      }
      return;
    }
    default:
      return;
  }
}

export async function checkRawSql(ctx: IsolationContext, text: string, params: readonly unknown[] = []) {
  // Loaded on first use: the parser's wasm heap (~130 MB) stays out of processes that never run raw SQL.
  const { parse } = await import('libpg-query');
  let tree: { stmts?: { stmt: Node }[] };
  try {
    tree = (await parse(text)) as typeof tree;
  } catch (err) {
    throw new ValidationError('raw SQL does not parse', [{ path: 'sql', issue: (err as Error).message }]);
  }
  const statements = tree.stmts ?? [];
  if (statements.length !== 1)
    throw violation('exactly one statement is allowed', { statements: statements.length });
  const stmt = statements[0]!.stmt;
  const kind = Object.keys(stmt)[0] ?? 'unknown';
  if (!ALLOWED_STATEMENTS.has(kind)) throw violation(`${kind} is not allowed`, { statement: kind });
  for (const [type, node] of walk(stmt)) checkNode(type, node, ctx, params);
}
