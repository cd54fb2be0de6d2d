import { parseArgs } from 'node:util';

import { z } from 'zod';

import type { Database } from '../db/database';
import { IDENTIFIER_PATTERN } from '../domain/isolationContext';
import { importContext, importMaiBot, type ImportReport, openSource } from './importer';
import { createProgress, type ProgressOutput } from './progress';
import { verifyImport, type VerifyLine } from './verify';

export const IMPORT_USAGE = `usage: maihive import-maibot --sqlite <MaiBot.db> --tenant <id> --agent <id>
                             [--platform qq] [--bot-user-id <id>]… [--batch-size 5000]
                             [--dry-run | --verify-only]`;

const identifier = z.string().regex(IDENTIFIER_PATTERN);
const Args = z.object({
  sqlite: z.string().min(1),
  tenant: identifier,
  agent: identifier,
  platform: identifier.default('qq'),
  'bot-user-id': z.array(z.string().min(1)).default([]),
  'batch-size': z.coerce.number().int().min(1).max(50_000).default(5000),
  'dry-run': z.boolean().default(false),
  'verify-only': z.boolean().default(false),
});
export type ImportArgs = z.infer<typeof Args>;

/** Parses `import-maibot` arguments; throws a usage message on anything wrong. */
export function parseImportArgs(argv: string[]): ImportArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      sqlite: { type: 'string' },
      tenant: { type: 'string' },
      agent: { type: 'string' },
      platform: { type: 'string' },
      'bot-user-id': { type: 'string', multiple: true },
      'batch-size': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'verify-only': { type: 'boolean' },
    },
    strict: true,
  });
  const parsed = Args.safeParse(values);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ');
    throw new UsageError(`${fields}\n${IMPORT_USAGE}`);
  }
  if (parsed.data['dry-run'] && parsed.data['verify-only']) {
    throw new UsageError(`--dry-run and --verify-only exclude each other\n${IMPORT_USAGE}`);
  }
  return parsed.data;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n') + '\n';
}

export function formatImportReport(report: ImportReport): string {
  const rows = report.tables.map((t) => [
    t.source,
    t.target,
    String(t.read),
    String(t.imported),
    String(Object.values(t.skipped).reduce((a, b) => a + b, 0)),
    Object.entries(t.skipped)
      .map(([why, n]) => `${why} (${n})`)
      .join('; '),
  ]);
  const rate = report.elapsedMs > 0 ? Math.round((report.rowsRead * 1000) / report.elapsedMs) : 0;
  let out = `MaiBot ${report.generation} database${report.dryRun ? ' (dry run: nothing written)' : ''}\n`;
  out += `bot user ids: ${report.botUserIds.join(', ') || 'none'} (${report.botIdsFrom})\n\n`;
  out += table(
    ['source', 'target', 'read', report.dryRun ? 'would import' : 'imported', 'skipped', 'why'],
    rows,
  );
  if (report.noHome.length > 0) {
    out += '\nnot imported (no home here):\n';
    out += table(
      ['source', 'rows', 'what'],
      report.noHome.map((n) => [n.table, String(n.rows), n.why]),
    );
  }
  out += `\n${report.rowsRead} rows in ${(report.elapsedMs / 1000).toFixed(1)} s (${rate} rows/s)`;
  out += report.interrupted ? ' - interrupted; run again to continue\n' : '\n';
  return out;
}

export function formatVerification(lines: readonly VerifyLine[]): string {
  return table(
    ['source', 'target', 'source rows', 'expected', 'found', 'source sum', 'dest sum', 'result'],
    lines.map((l) => [
      l.source,
      l.target,
      String(l.sourceRows),
      String(l.expected),
      String(l.found),
      l.sourceChecksum.slice(0, 12),
      l.destChecksum.slice(0, 12),
      l.ok ? 'ok' : 'MISMATCH',
    ]),
  );
}

/**
 * `maihive import-maibot`: import (unless --verify-only), then verify (unless --dry-run). Exit
 * code 0 when everything matches, 1 on a mismatch or an interrupted run.
 */
export async function runImportCommand(
  db: Database,
  args: ImportArgs,
  out: ProgressOutput,
  signal?: AbortSignal,
): Promise<number> {
  const base = {
    sqlitePath: args.sqlite,
    tenantId: args.tenant,
    agentId: args.agent,
    defaultPlatform: args.platform,
    botUserIds: args['bot-user-id'],
  };
  if (!args['verify-only']) {
    const report = await importMaiBot(db, {
      ...base,
      dryRun: args['dry-run'],
      batchSize: args['batch-size'],
      signal,
      progress: createProgress(out),
    });
    out.write(`\n${formatImportReport(report)}`);
    if (report.interrupted) return 1;
    if (args['dry-run']) return 0;
  }
  const ctx = importContext(args.tenant, args.agent);
  const { source, plan } = await openSource(db, ctx, base);
  try {
    const lines = await verifyImport(db, ctx, source, plan);
    out.write(`\nverification (counts and checksums over the mapped columns):\n${formatVerification(lines)}`);
    const bad = lines.filter((l) => !l.ok);
    out.write(bad.length === 0 ? 'all tables match\n' : `${bad.length} table(s) do not match\n`);
    return bad.length === 0 ? 0 : 1;
  } finally {
    source.close();
  }
}
