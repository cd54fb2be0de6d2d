/**
 * What the plugin sandbox costs a message: the dice command (`/roll 2d6`) run in the sandbox thread
 * (message round trip, budget timer) against the same component called in process, in the same
 * run (the baseline). Sequential calls give the latency a command adds to its message; 8 at once
 * show the single thread under concurrency. No database: the component makes no PluginAPI call.
 * Writes bench/results/plugins-<timestamp>.json and plugins-latest.json.
 */
import { PluginCatalog } from '../src/plugins/catalog';
import type { PluginApi, PluginDefinition } from '../src/plugins/manifest';
import { PluginSandbox } from '../src/plugins/sandbox';
import { writeResult } from './lib/queueBench';
import { formatTable, latencyStats, timed } from './lib/stats';

const CALLS = 2000;
const CONCURRENCY = 8;

async function main(): Promise<void> {
  const entry = PluginCatalog.load({}).get('dice')!;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dice = (require(entry.modulePath) as { default: PluginDefinition }).default;
  const input = {
    message: { message_id: null, content: '/roll 2d6', sender: { user_id: null, nickname: null } },
    args: { dice: '2d6' },
  };
  const direct = () => Promise.resolve(dice.commands![0]!.execute(input, {} as PluginApi));
  const sandbox = new PluginSandbox({ preload: [entry.modulePath] });
  const call = {
    modulePath: entry.modulePath,
    kind: 'command' as const,
    name: 'roll',
    input,
    context: { agent_id: 'default', platform: null, chat_stream_id: null },
    config: {},
    budgetMs: 5000,
    api: () => Promise.resolve(null),
  };
  const startup = await timed(() => sandbox.run(call));
  for (let i = 0; i < 200; i++) await sandbox.run(call); // warm-up
  const sequential = { baseline: [] as number[], sandbox: [] as number[] };
  for (let i = 0; i < CALLS; i++) {
    sequential.baseline.push(await timed(direct));
    sequential.sandbox.push(await timed(() => sandbox.run(call)));
  }
  const concurrent: number[] = [];
  for (let i = 0; i < CALLS / CONCURRENCY; i++) {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, () =>
        timed(() => sandbox.run(call)).then((ms) => concurrent.push(ms)),
      ),
    );
  }
  await sandbox.close();
  const result = {
    calls: CALLS,
    first_call_ms_including_thread_start: Math.round(startup),
    baseline_in_process: latencyStats(sequential.baseline),
    sandbox_sequential: latencyStats(sequential.sandbox),
    sandbox_concurrent_8: latencyStats(concurrent),
  };
  const added = result.sandbox_sequential.p50_ms - result.baseline_in_process.p50_ms;
  console.log(
    formatTable([
      ['', 'p50 ms', 'p95 ms', 'p99 ms'],
      ...(['baseline_in_process', 'sandbox_sequential', 'sandbox_concurrent_8'] as const).map((k) => [
        k,
        String(result[k].p50_ms),
        String(result[k].p95_ms),
        String(result[k].p99_ms),
      ]),
    ]),
  );
  console.log(
    `sandbox adds ${added.toFixed(3)} ms per command at p50; first call ${result.first_call_ms_including_thread_start} ms`,
  );
  console.log(
    `wrote ${(await writeResult('plugins', { ...result, added_p50_ms: added }, new Date())).join(' and ')}`,
  );
}

void main();
