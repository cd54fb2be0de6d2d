import type { Database, TenantDb } from '../db/database';
import { createIsolationContext, type IsolationContext } from '../domain/isolationContext';
import { detectGeneration } from './detect';
import {
  advanceCheckpoint,
  agentAccountIds,
  agentExists,
  type Checkpoint,
  existingStreams,
  insertRows,
  naturalHolders,
  naturalValues,
  readCheckpoints,
  withoutNaturalDuplicates,
} from './importRepository';
import type { MapContext, MapResult } from './mapping/common';
import type { Generation, SourceTableSpec } from './mapping/generation';
import type { ProgressSink } from './progress';
import { silentProgress } from './progress';
import { type NoHomeTable, planSource, type SourcePlan } from './sourcePlan';
import { quoteIdent, type SourceRow, SqliteSource } from './sqliteSource';
import { type TargetName, type TargetRow, TARGETS } from './targets';

export interface ImportOptions {
  /** Path of the MaiBot SQLite file. */
  sqlitePath: string;
  tenantId: string;
  agentId: string;
  /** Platform of rows that name none. Default `qq`. */
  defaultPlatform?: string;
  /** Read and map everything, write nothing. */
  dryRun?: boolean;
  /** Source rows per transaction. Default 5000. */
  batchSize?: number;
  /** Batch transactions in flight at once (each a pooled connection). Default 3. */
  concurrency?: number;
  /** The bot's own user ids (its messages become replies); default: agent accounts, then inferred. */
  botUserIds?: readonly string[];
  /** Stops between batches (Ctrl-C); what was committed stays, a re-run continues. */
  signal?: AbortSignal;
  progress?: ProgressSink;
}

/** One source table's outcome: rows read, new rows written, rows skipped and why. */
export interface TableReport {
  source: string;
  target: string;
  read: number;
  imported: number;
  skipped: Record<string, number>;
}

export interface ImportReport {
  generation: Generation['name'];
  dryRun: boolean;
  tables: TableReport[];
  noHome: NoHomeTable[];
  botUserIds: string[];
  botIdsFrom: string;
  /** Source rows handled by this run (read), and the time it took. */
  rowsRead: number;
  elapsedMs: number;
  /** True when the signal stopped the run before the end. */
  interrupted: boolean;
}

/** The tenant or agent to import into does not exist. */
export class ImportTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportTargetError';
  }
}

export const ORPHAN_CHATS = '(recreated chats)';

/** Opens and checks the source, detects its generation and plans it; throws before any write. */
export async function openSource(
  db: Database,
  ctx: IsolationContext,
  options: Pick<ImportOptions, 'sqlitePath' | 'agentId' | 'defaultPlatform' | 'botUserIds'>,
): Promise<{ source: SqliteSource; plan: SourcePlan }> {
  const source = await SqliteSource.open(options.sqlitePath);
  try {
    const generation = detectGeneration(source.tables());
    const accounts = await db.withTenant(ctx, async (tx) => {
      if (!(await agentExists(tx, options.agentId))) {
        throw new ImportTargetError(
          `tenant ${ctx.tenantId} has no agent ${options.agentId} (or the tenant does not exist)`,
        );
      }
      return agentAccountIds(tx, options.agentId);
    });
    const given =
      options.botUserIds && options.botUserIds.length > 0
        ? options.botUserIds
        : accounts.map((a) => a.accountId);
    const plan = planSource(source, generation, {
      agentId: options.agentId,
      defaultPlatform: options.defaultPlatform ?? 'qq',
      botUserIds: given,
    });
    await refuseForeignStreams(db, ctx, plan);
    return { source, plan };
  } catch (err) {
    source.close();
    throw err;
  }
}

/**
 * A chat stream belongs to one agent and platform here. If one the import would write already
 * belongs to another agent (another bot of the tenant in the same group) or platform, its rows
 * could not be written: stop before writing anything, naming them. Looked up tenant-wide, since
 * the agent's own unit of work cannot see other agents' streams.
 */
async function refuseForeignStreams(db: Database, ctx: IsolationContext, plan: SourcePlan): Promise<void> {
  const wanted = new Map([...plan.context.streams.values()].map((s) => [s.chatStreamId, s.platform]));
  const tenantWide = createIsolationContext({ tenantId: ctx.tenantId });
  const existing = await db.withTenant(tenantWide, (tx) => existingStreams(tx, [...wanted.keys()]));
  const foreign = existing.filter(
    (e) => e.agentId !== ctx.agentId || e.platform !== wanted.get(e.chatStreamId),
  );
  if (foreign.length > 0) {
    const named = foreign.slice(0, 5).map((f) => `${f.chatStreamId} (agent ${f.agentId}, ${f.platform})`);
    throw new ImportTargetError(
      `${foreign.length} chat stream(s) this import would write already belong to another agent or platform ` +
        `of tenant ${ctx.tenantId}: ${named.join(', ')}${foreign.length > 5 ? ', …' : ''}`,
    );
  }
}

export function importContext(tenantId: string, agentId: string): IsolationContext {
  return createIsolationContext({ tenantId, agentId });
}

/**
 * Imports a MaiBot database into one agent of one tenant: chats first (with chats that rows still
 * refer to recreated), then each table with a home, a batch per transaction, each batch advancing
 * that table's checkpoint in the same transaction. Re-running continues after the last committed
 * batch; rows already there are left alone (`ON CONFLICT DO NOTHING`), so nothing is imported twice.
 */
export async function importMaiBot(db: Database, options: ImportOptions): Promise<ImportReport> {
  const started = Date.now();
  const ctx = importContext(options.tenantId, options.agentId);
  const { source, plan } = await openSource(db, ctx, options);
  const progress = options.progress ?? silentProgress;
  const dryRun = options.dryRun === true;
  const batchSize = options.batchSize ?? 5000;
  const generation = plan.generation;
  const tables: TableReport[] = [];
  let rowsRead = 0;
  let interrupted = false;
  try {
    const checkpoints = dryRun
      ? new Map<string, Checkpoint>()
      : await db.withTenant(ctx, (tx) => readCheckpoints(tx, options.agentId));
    // A 1.x database holds what MaiBot migrated from its 0.x one: importing both into one agent
    // would import that history twice under different keys.
    const other = [...checkpoints.values()].find((c) => c.generation !== generation.name);
    if (other) {
      throw new ImportTargetError(
        `agent ${options.agentId} of tenant ${options.tenantId} already has an import from a MaiBot ${other.generation} ` +
          `database; a ${generation.name} one would bring the same history again (import it into another agent)`,
      );
    }

    const chatSpec: SourceTableSpec = {
      source: generation.chats.table,
      targets: ['chat_streams'],
      map: (row) => {
        const mapped = generation.mapChat(row, plan.context);
        return mapped
          ? { rows: { chat_streams: [mapped] } }
          : { skip: `chat without ${generation.chats.idColumn}` };
      },
    };
    const specs = [chatSpec, ...plan.tables];
    for (const [i, spec] of specs.entries()) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const report = await importTable(db, ctx, source, spec, plan.context, {
        generation: generation.name,
        checkpoint: checkpoints.get(spec.source),
        batchSize,
        concurrency: options.concurrency ?? 3,
        dryRun,
        progress,
        signal: options.signal,
      });
      rowsRead += report.read;
      tables.push(report);
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      // Chats that rows refer to but the chats table lacks: before the first table that needs them.
      if (i === 0) {
        const imported = dryRun
          ? plan.orphanChats.length
          : await db.withTenant(ctx, async (tx) => insertRows(tx, TARGETS.chat_streams, plan.orphanChats));
        tables.push({
          source: ORPHAN_CHATS,
          target: 'chat_streams',
          read: plan.orphanChats.length,
          imported,
          skipped: {},
        });
      }
    }
  } finally {
    source.close();
  }
  return {
    generation: generation.name,
    dryRun,
    tables,
    noHome: [...plan.noHome],
    botUserIds: [...plan.context.botUserIds],
    botIdsFrom: plan.botIdsFrom,
    rowsRead,
    elapsedMs: Date.now() - started,
    interrupted,
  };
}

interface TableRun {
  generation: string;
  checkpoint: Checkpoint | undefined;
  batchSize: number;
  concurrency: number;
  dryRun: boolean;
  progress: ProgressSink;
  signal: AbortSignal | undefined;
}

/** Rows of one batch mapped, grouped by target (each key once), with skip reasons counted. */
export function mapBatch(
  rows: readonly SourceRow[],
  spec: SourceTableSpec,
  ctx: MapContext,
): { byTarget: Map<TargetName, TargetRow[]>; skipped: Record<string, number> } {
  const byTarget = new Map<TargetName, Map<string, TargetRow>>(spec.targets.map((t) => [t, new Map()]));
  const skipped: Record<string, number> = {};
  for (const row of rows) {
    const result: MapResult = spec.map(row, ctx);
    if ('skip' in result) {
      skipped[result.skip] = (skipped[result.skip] ?? 0) + 1;
      continue;
    }
    for (const [target, mapped] of Object.entries(result.rows)) {
      const bucket = byTarget.get(target as TargetName);
      for (const r of mapped) bucket?.set(r.key, r);
    }
  }
  return {
    byTarget: new Map([...byTarget].map(([t, m]) => [t, [...m.values()]])),
    skipped,
  };
}

async function importTable(
  db: Database,
  ctx: IsolationContext,
  source: SqliteSource,
  spec: SourceTableSpec,
  mapCtx: MapContext,
  run: TableRun,
): Promise<TableReport> {
  const primary = spec.targets[spec.targets.length - 1]!;
  const report: TableReport = { source: spec.source, target: primary, read: 0, imported: 0, skipped: {} };
  const after = run.checkpoint?.lastSourceId ?? 0;
  const remaining = Number(
    source.query(`SELECT count(*) AS n FROM ${quoteIdent(spec.source)} WHERE rowid > ?`, [after])[0]?.n ?? 0,
  );
  run.progress.start(spec.source, remaining);

  // Batches are written up to `concurrency` at a time while the next ones are read and mapped.
  // A table's checkpoint only ever covers batches that all committed: each batch's transaction
  // sets it to the end of the unbroken run of committed batches (this one counted, as it commits
  // with it). Rows of a batch that committed past that point are read again by a resumed run and
  // conflict (`ON CONFLICT DO NOTHING` on deterministic keys), so nothing is lost or doubled.
  const batches: { end: number; done: boolean }[] = [];
  const lowWater = (self: { end: number }) => {
    let mark = after;
    for (const b of batches) {
      if (!b.done && b !== self) break;
      mark = b.end;
    }
    return mark;
  };
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  const writeBatch = async (rows: readonly SourceRow[], entry: { end: number; done: boolean }) => {
    const { byTarget, skipped } = mapBatch(rows, spec, mapCtx);
    const imported = run.dryRun
      ? (byTarget.get(primary)?.length ?? 0)
      : await db.withTenant(ctx, async (tx: TenantDb) => {
          let n = 0;
          for (const target of spec.targets) {
            const table = TARGETS[target];
            const mapped = byTarget.get(target) ?? [];
            const holders = await naturalHolders(tx, table, naturalValues(table, mapped));
            const kept = withoutNaturalDuplicates(table, mapped, holders);
            if (kept.skipped > 0 && target === primary)
              skipped[kept.reason] = (skipped[kept.reason] ?? 0) + kept.skipped;
            const inserted = await insertRows(tx, table, kept.rows);
            if (target === primary) n = inserted;
          }
          await advanceCheckpoint(tx, ctx.agentId!, spec.source, run.generation, {
            lastSourceId: lowWater(entry),
            read: rows.length,
            imported: n,
            skipped,
          });
          return n;
        });
    entry.done = true;
    report.read += rows.length;
    report.imported += imported;
    for (const [reason, n] of Object.entries(skipped))
      report.skipped[reason] = (report.skipped[reason] ?? 0) + n;
    run.progress.advance(spec.source, rows.length);
  };
  for (const rows of source.scan(spec.source, run.batchSize, after)) {
    if (failure !== undefined || run.signal?.aborted) break;
    const entry = { end: rows[rows.length - 1]!.rowid, done: false };
    batches.push(entry);
    const task: Promise<void> = writeBatch(rows, entry)
      .catch((err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= run.concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  run.progress.finish(spec.source);
  return report;
}
