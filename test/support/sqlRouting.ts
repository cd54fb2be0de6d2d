/**
 * How Citus would route one SQL statement of the application, decided from PostgreSQL's own parse
 * tree (libpg-query, as `src/db/rawSqlGuard.ts` does).
 *
 * Citus sends a statement to ONE shard (the router planner) when every distributed table it reads
 * or writes is pinned to one distribution value: `tenant_id = <parameter or constant>` on that
 * table, or an equality join on `tenant_id` with a table that is pinned (co-located tables share
 * shards, so the join stays on the shard). An INSERT is routed by the `tenant_id` it carries.
 * Anything else fans out to every shard (multi-shard). Row-level security is NOT a routing input:
 * Citus plans before the policies apply, so a statement that relies on `app.tenant_id` alone is
 * multi-shard.
 *
 * The rules are read conservatively: a `tenant_id = $1` only pins a table when it is a conjunct of
 * the WHERE or JOIN ON condition (not under OR / NOT), and `tenant_id = ANY($1)` pins nothing.
 */

import { isNode, list, names, type Node } from './parseTree';

export type Routing =
  /** BEGIN, COMMIT, SET, … */
  | 'utility'
  /** No table at all (`SELECT 1`, `SELECT set_config(…)`). */
  | 'no-table'
  /** Only reference (platform) tables: answered by any node. */
  | 'platform'
  /** Every distributed table pinned to one tenant: one shard. */
  | 'single-tenant'
  | 'multi-shard';

export interface RoutingResult {
  routing: Routing;
  /** Every table the statement names (CTE names excluded), sorted. */
  tables: string[];
  /** The distributed tables (or table-touching functions, as `name()`) left unpinned, sorted. */
  unpinned: string[];
}

export interface RoutingSchema {
  /** Hash-distributed by tenant_id, all in one co-location group. */
  distributed: ReadonlySet<string>;
  /** Functions that read or write distributed tables themselves (SECURITY DEFINER helpers). */
  tableFunctions: ReadonlySet<string>;
}

const STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

/** A table named in a FROM / target position of one scope. */
interface Ref {
  id: number;
  table: string;
  /** What column references qualify it by: the alias, else the table name. */
  label: string;
}

interface Scope {
  parent: Scope | undefined;
  refs: Ref[];
}

/** A parameter, a constant, or a cast of one: one value known before planning. */
function isFixedValue(node: unknown): boolean {
  if (!isNode(node)) return false;
  if (isNode(node.TypeCast)) return isFixedValue(node.TypeCast.arg);
  return isNode(node.ParamRef) || isNode(node.A_Const);
}

function tenantColumn(node: unknown): string[] | undefined {
  if (!isNode(node) || !isNode(node.ColumnRef)) return undefined;
  const fields = names(node.ColumnRef.fields);
  return fields.at(-1) === 'tenant_id' ? fields : undefined;
}

/** The conjuncts of a condition: AND is flattened, anything else is one conjunct. */
function conjuncts(node: unknown): unknown[] {
  if (!isNode(node)) return [];
  const bool = node.BoolExpr;
  if (isNode(bool) && bool.boolop === 'AND_EXPR') return list(bool.args).flatMap(conjuncts);
  return [node];
}

class Analysis {
  readonly refs: Ref[] = [];
  readonly tables = new Set<string>();
  readonly calledFunctions = new Set<string>();
  private readonly parent: number[] = [];
  private readonly pinned = new Set<number>();
  private readonly cteNames = new Set<string>();

  constructor(private readonly schema: RoutingSchema) {}

  isPinned(ref: Ref): boolean {
    return this.pinned.has(this.find(ref.id));
  }

  /** Visits one SELECT / INSERT / UPDATE / DELETE as a scope of its own. */
  statement(kind: string, node: Node, outer: Scope | undefined): Scope {
    const scope: Scope = { parent: outer, refs: [] };
    for (const cte of list(isNode(node.withClause) ? node.withClause.ctes : [])) {
      if (isNode(cte) && isNode(cte.CommonTableExpr)) this.cteNames.add(String(cte.CommonTableExpr.ctename));
    }
    if (kind === 'SelectStmt' && node.op !== undefined && node.op !== 'SETOP_NONE') {
      for (const side of [node.larg, node.rarg]) if (isNode(side)) this.statement('SelectStmt', side, outer);
      this.nested(node.withClause, scope);
      return scope;
    }
    const quals: unknown[] = [];
    if (isNode(node.relation)) this.addRef(scope, node.relation);
    for (const item of [...list(node.fromClause), ...list(node.usingClause)]) this.from(item, scope, quals);
    quals.push(...conjuncts(node.whereClause));
    for (const qual of quals) this.predicate(qual, scope);
    if (kind === 'InsertStmt') this.insert(node, scope);
    else this.nested(node, scope);
    return scope;
  }

  private from(item: unknown, scope: Scope, quals: unknown[]): void {
    if (!isNode(item)) return;
    if (isNode(item.RangeVar)) this.addRef(scope, item.RangeVar);
    else if (isNode(item.JoinExpr)) {
      this.from(item.JoinExpr.larg, scope, quals);
      this.from(item.JoinExpr.rarg, scope, quals);
      quals.push(...conjuncts(item.JoinExpr.quals));
    }
    // Subqueries in FROM and function calls are reached by `nested`.
  }

  private addRef(scope: Scope, rangeVar: Node): void {
    const table = String(rangeVar.relname);
    if (rangeVar.schemaname === undefined && this.cteNames.has(table)) return;
    this.tables.add(table);
    const alias = isNode(rangeVar.alias) ? String(rangeVar.alias.aliasname) : table;
    const ref: Ref = { id: this.refs.length, table, label: alias };
    this.refs.push(ref);
    this.parent.push(ref.id);
    scope.refs.push(ref);
  }

  /** The distributed table a `tenant_id` column reference means, looked up from `scope` outwards. */
  private resolve(fields: string[], scope: Scope | undefined): Ref | undefined {
    for (let s = scope; s; s = s.parent) {
      const candidates = s.refs.filter(
        (r) => this.schema.distributed.has(r.table) && (fields.length === 1 || r.label === fields.at(-2)),
      );
      if (candidates.length > 0) return candidates[0];
    }
    return undefined;
  }

  private predicate(qual: unknown, scope: Scope): void {
    if (!isNode(qual) || !isNode(qual.A_Expr)) return;
    const e = qual.A_Expr;
    if (e.kind !== 'AEXPR_OP' || names(e.name).join('.') !== '=') return;
    const [left, right] = [tenantColumn(e.lexpr), tenantColumn(e.rexpr)];
    if (left && right) {
      const [a, b] = [this.resolve(left, scope), this.resolve(right, scope)];
      if (a && b) this.union(a.id, b.id);
      return;
    }
    const column = left ?? right;
    const value = left ? e.rexpr : e.lexpr;
    const ref = column && isFixedValue(value) ? this.resolve(column, scope) : undefined;
    if (ref) this.pinned.add(this.find(ref.id));
  }

  /** INSERT: pinned by the tenant_id it carries, in every VALUES row or in the SELECT's output. */
  private insert(node: Node, scope: Scope): void {
    const target = scope.refs[0];
    const index = list(node.cols).findIndex(
      (c) => isNode(c) && isNode(c.ResTarget) && c.ResTarget.name === 'tenant_id',
    );
    const select =
      isNode(node.selectStmt) && isNode(node.selectStmt.SelectStmt) ? node.selectStmt.SelectStmt : undefined;
    this.nested(
      {
        withClause: node.withClause,
        onConflictClause: node.onConflictClause,
        returningList: node.returningList,
      },
      scope,
    );
    if (!select) return;
    const inner = this.statement('SelectStmt', select, scope);
    if (!target || index < 0) return;
    const rows = list(select.valuesLists);
    if (rows.length > 0) {
      const items = rows.map((row) =>
        isNode(row) && isNode(row.List) ? list(row.List.items)[index] : undefined,
      );
      if (items.every(isFixedValue)) this.pinned.add(this.find(target.id));
      return;
    }
    const out = list(select.targetList)[index];
    const value = isNode(out) && isNode(out.ResTarget) ? out.ResTarget.val : undefined;
    if (isFixedValue(value)) this.pinned.add(this.find(target.id));
    const column = tenantColumn(value);
    const source = column ? this.resolve(column, inner) : undefined;
    if (source) this.union(target.id, source.id);
  }

  /** Statements nested anywhere in `value` (subqueries, CTEs, sublinks), and table-touching calls. */
  private nested(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) {
      for (const item of value) this.nested(item, scope);
      return;
    }
    if (!isNode(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (STATEMENTS.has(key) && isNode(child)) this.statement(key, child, scope);
      else {
        if (key === 'FuncCall' && isNode(child)) {
          const fn = names(child.funcname).at(-1) ?? '';
          if (this.schema.tableFunctions.has(fn)) this.calledFunctions.add(fn);
        }
        this.nested(child, scope);
      }
    }
  }

  private find(id: number): number {
    while (this.parent[id] !== id) id = this.parent[id] = this.parent[this.parent[id]!]!;
    return id;
  }

  private union(a: number, b: number): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra === rb) return;
    this.parent[ra] = rb;
    if (this.pinned.has(ra)) this.pinned.add(rb);
  }
}

/** Routing of ONE parsed statement (a `stmt` of libpg-query's output). */
export function routeStatement(stmt: Node, schema: RoutingSchema): RoutingResult {
  const kind = Object.keys(stmt)[0] ?? '';
  if (!STATEMENTS.has(kind) || !isNode(stmt[kind])) return { routing: 'utility', tables: [], unpinned: [] };
  const analysis = new Analysis(schema);
  analysis.statement(kind, stmt[kind], undefined);
  const tables = [...analysis.tables].sort();
  const distributed = analysis.refs.filter((r) => schema.distributed.has(r.table));
  const unpinned = [
    ...new Set([
      ...distributed.filter((r) => !analysis.isPinned(r)).map((r) => r.table),
      ...[...analysis.calledFunctions].map((f) => `${f}()`),
    ]),
  ].sort();
  if (unpinned.length > 0) return { routing: 'multi-shard', tables, unpinned };
  if (distributed.length > 0) return { routing: 'single-tenant', tables, unpinned };
  return { routing: tables.length > 0 ? 'platform' : 'no-table', tables, unpinned };
}

/** Routing of every statement of a SQL text (a simple query may hold several). */
export async function routeSql(text: string, schema: RoutingSchema): Promise<RoutingResult[]> {
  const { parse } = await import('libpg-query');
  const tree = (await parse(text)) as { stmts?: { stmt: Node }[] };
  return (tree.stmts ?? []).map((s) => routeStatement(s.stmt, schema));
}
