import pg from 'pg';

/**
 * One statement and the settings it runs under, sent in ONE round trip as one implicit
 * transaction of the extended query protocol: the settings statement (`set_config(…, true)` for
 * each setting) and the statement are two Bind/Execute pairs before a single Sync, and PostgreSQL
 * runs everything up to a Sync as one transaction (protocol-flow, "Pipelining"). The settings are
 * therefore in force for the statement and vanish at the Sync, exactly as a unit of work's
 * `BEGIN; SELECT set_config(…, true)` … `COMMIT` does, without those two round trips. If the
 * settings fail, PostgreSQL skips the statement (it discards messages up to the Sync after an
 * error); if the statement fails, the transaction rolls back. The statement runs as the
 * connection's role, under row-level security, like any other.
 *
 * This drives `pg.Query`'s extended-protocol path (pg 8, lib/query.js): `prepare` is where a query
 * writes its Parse/Bind/Describe/Execute/Sync, and a query whose messages produce several results
 * collects them all (`_results`). `test/integration/tenantRead.test.ts` pins the behaviour.
 */

/** Every setting of a scoped statement, one row each: set, and nothing returned. */
const SETTINGS_SQL = `SELECT FROM unnest($1::text[], $2::text[]) AS s(name, value)
  WHERE set_config(s.name, s.value, true) IS NULL`;

/** The parts of pg's connection (pg 8, lib/connection.js) a query writes its messages with. */
interface Wire {
  parse(msg: { text: string; name?: string | undefined; types?: unknown }): void;
  bind(msg: {
    portal: string;
    statement?: string | undefined;
    values: readonly unknown[];
    binary?: boolean;
    valueMapper: (v: unknown) => unknown;
  }): void;
  describe(msg: { type: 'P' | 'S'; name: string }): void;
  execute(msg: { portal: string; rows?: number }): void;
  sync(): void;
  close(msg: { type: 'P' | 'S'; name: string }): void;
  submittedNamedStatements: Record<string, string>;
}

/** The parts of `pg.Query` (pg 8, lib/query.js) this subclass relies on. */
interface QueryInternals {
  text: string;
  name?: string;
  values?: unknown[];
  types?: unknown;
  binary?: boolean;
  portal: string;
  _results: pg.QueryResult | pg.QueryResult[];
  hasBeenParsed(connection: Wire): boolean;
  handleError(err: Error, connection: Wire): void;
}

const { prepareValue } = (pg as unknown as { utils: { prepareValue: (v: unknown) => unknown } }).utils;

export interface ScopedStatementOptions {
  /** Settings in force for the statement only (`set_config(name, value, true)`), in order. */
  settings: Readonly<Record<string, string>>;
  text: string;
  values?: readonly unknown[] | undefined;
  /** Named: parsed once per connection and kept prepared (see `statementName`). */
  name?: string | undefined;
}

/** `pg.Query`, writing the settings statement before its own statement and one Sync after both. */
class ScopedQuery extends pg.Query {
  constructor(
    private readonly settings: readonly [string[], string[]],
    config: pg.QueryConfig,
    callback: (err: Error | undefined, result: pg.QueryResult | pg.QueryResult[]) => void,
  ) {
    super(config, callback as never);
  }

  // Overrides pg.Query#prepare (untyped in @types/pg).
  prepare(connection: Wire): void {
    const self = this as unknown as QueryInternals;
    // A named statement's Parse goes first: pg marks it parsed at the first ParseComplete of the
    // query, which must then be its own (and a later unnamed Parse would not replace it).
    const parseOwn = () => {
      connection.parse({ text: self.text, name: self.name, types: self.types });
      if (self.name) connection.submittedNamedStatements[self.name] = self.text;
    };
    const named = Boolean(self.name);
    if (named && !self.hasBeenParsed(connection)) parseOwn();
    connection.parse({ text: SETTINGS_SQL, name: '' });
    connection.bind({ portal: '', statement: '', values: this.settings, valueMapper: prepareValue });
    connection.execute({ portal: '', rows: 0 });
    if (!named) parseOwn();
    try {
      connection.bind({
        portal: self.portal,
        statement: self.name,
        values: self.values ?? [],
        binary: self.binary,
        valueMapper: prepareValue,
      });
    } catch (err) {
      // A value pg cannot serialize: end the exchange (the settings' transaction rolls back).
      connection.sync();
      self.handleError(err as Error, connection);
      return;
    }
    connection.describe({ type: 'P', name: self.portal });
    connection.execute({ portal: self.portal, rows: 0 });
    connection.sync();
  }
}

/**
 * Runs `statement` on `client` under `settings` in one round trip (see the module comment) and
 * returns the statement's result.
 */
export function queryScoped<R extends pg.QueryResultRow>(
  client: pg.ClientBase,
  s: ScopedStatementOptions,
): Promise<pg.QueryResult<R>> {
  const entries = Object.entries(s.settings);
  const settings: [string[], string[]] = [entries.map(([k]) => k), entries.map(([, v]) => v)];
  return new Promise((resolve, reject) => {
    const query = new ScopedQuery(
      settings,
      // Extended protocol even without parameters: `prepare` is where the settings go.
      { text: s.text, values: s.values, name: s.name, queryMode: 'extended' } as pg.QueryConfig,
      (err, result) => {
        if (err) return reject(err);
        // The settings statement's result first, the statement's last (`_results`).
        resolve((Array.isArray(result) ? result[result.length - 1] : result) as pg.QueryResult<R>);
      },
    );
    // A submittable's result is the submittable itself; the callback carries the outcome.
    client.query(query);
  });
}
