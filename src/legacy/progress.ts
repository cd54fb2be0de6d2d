/** Where progress goes: a terminal gets one bar redrawn in place, anything else plain lines. */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
}

export interface ProgressSink {
  start(table: string, total: number): void;
  advance(table: string, rows: number): void;
  finish(table: string): void;
}

export const silentProgress: ProgressSink = { start() {}, advance() {}, finish() {} };

const BAR_WIDTH = 24;
/** Plain lines are written at most this often, ms (and at the end of each table). */
const PLAIN_INTERVAL_MS = 2000;

interface TableState {
  total: number;
  done: number;
  startedAt: number;
  lastLineAt: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line: table, bar (terminal only), done/total, rows/s, ETA. */
export function progressLine(
  table: string,
  done: number,
  total: number,
  elapsedMs: number,
  bar: boolean,
): string {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  const filled = Math.round(fraction * BAR_WIDTH);
  const drawn = bar ? `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` : '';
  return (
    `${table.padEnd(16)} ${drawn}${String(Math.floor(fraction * 100)).padStart(3)}% ` +
    `${done}/${total}  ${Math.round(rate)} rows/s  ETA ${done >= total ? '0s' : formatDuration(eta)}`
  );
}

/** A hand-written progress reporter (no dependency): `\r`-redrawn bar on a TTY, throttled lines otherwise. */
export function createProgress(out: ProgressOutput, now: () => number = Date.now): ProgressSink {
  const tables = new Map<string, TableState>();
  const tty = out.isTTY === true;
  const render = (table: string, s: TableState, final: boolean) => {
    const line = progressLine(table, s.done, s.total, now() - s.startedAt, tty);
    if (tty) out.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else out.write(`${line}\n`);
    s.lastLineAt = now();
  };
  return {
    start(table, total) {
      const s = { total, done: 0, startedAt: now(), lastLineAt: 0 };
      tables.set(table, s);
      if (tty) render(table, s, false);
    },
    advance(table, rows) {
      const s = tables.get(table);
      if (!s) return;
      s.done += rows;
      // Plain output: a line every few seconds; the table's last line is finish()'s.
      if (tty || (s.done < s.total && now() - s.lastLineAt >= PLAIN_INTERVAL_MS)) render(table, s, false);
    },
    finish(table) {
      const s = tables.get(table);
      if (!s) return;
      render(table, s, true);
      tables.delete(table);
    },
  };
}
