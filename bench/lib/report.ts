/** The console summary of a database benchmark result. */
import { formatTable, type LatencyStats } from './stats';

interface Verdict {
  value: number;
  target: string;
  pass: boolean;
}

export interface DbSummary {
  readLimit: number;
  concurrency: number;
  batchSize: number;
  reads: Record<string, LatencyStats>;
  readsConcurrent: Record<string, { ops_per_s: number; latency: LatencyStats }>;
  inserts: Record<string, { rows_per_s: number; batch_latency: LatencyStats }>;
  readP99: Verdict;
  insertThroughput: Verdict;
  explain: { uses_messages_stream_recent: boolean; ordered_index_scan: boolean; sorts: boolean };
}

export function printDbSummary(s: DbSummary): void {
  const f = (x: number) => x.toFixed(3);
  const verdict = (v: Verdict) => `${v.value} (target ${v.target}) ${v.pass ? 'PASS' : 'FAIL'}`;
  console.log(`\nread latest ${s.readLimit}, concurrency 1 (ms)`);
  console.log(
    formatTable([
      ['variant', 'n', 'p50', 'p95', 'p99', 'mean'],
      ...Object.entries(s.reads).map(([n, l]) => [
        n,
        `${l.n}`,
        f(l.p50_ms),
        f(l.p95_ms),
        f(l.p99_ms),
        f(l.mean_ms),
      ]),
    ]),
  );
  console.log(`\nread latest ${s.readLimit}, concurrency ${s.concurrency}`);
  console.log(
    formatTable([
      ['variant', 'ops/s', 'p50 ms', 'p99 ms'],
      ...Object.entries(s.readsConcurrent).map(([n, c]) => [
        n,
        `${c.ops_per_s}`,
        f(c.latency.p50_ms),
        f(c.latency.p99_ms),
      ]),
    ]),
  );
  console.log(`\ninsert batches of ${s.batchSize}, concurrency 1`);
  console.log(
    formatTable([
      ['variant', 'rows/s', 'batch p50 ms', 'batch p99 ms'],
      ...Object.entries(s.inserts).map(([n, i]) => [
        n,
        `${i.rows_per_s}`,
        f(i.batch_latency.p50_ms),
        f(i.batch_latency.p99_ms),
      ]),
    ]),
  );
  console.log(`\nscoped_read_p99_ratio           ${verdict(s.readP99)}`);
  console.log(`scoped_insert_throughput_ratio  ${verdict(s.insertThroughput)}`);
  const e = s.explain;
  console.log(
    `scoped read plan: messages_stream_recent ${e.uses_messages_stream_recent ? 'used' : 'NOT used'}, ` +
      (e.ordered_index_scan ? 'ordered index scan' : 'no ordered index scan') +
      (e.sorts ? ', sorts the matching rows' : ''),
  );
}
