import NodeEnvironment from 'jest-environment-node';

/**
 * Jest's node environment, plus a check that a test file leaves nothing open: the resources that
 * keep the worker's event loop alive (sockets, servers, timers, child processes) are counted when
 * the file starts and again once all its tests and hooks have run. More at the end fails the file,
 * naming them. Closing is often asynchronous (a socket closes on a later tick, `pool.end()` resolves
 * before its sockets are gone), so the count is given `SETTLE_MS` to come back down.
 *
 * It runs at teardown rather than in an `afterAll` of `setupFilesAfterEnv`, which would run before
 * the file's own `afterAll` cleanup. Files in one worker run one after another, so a leak is
 * blamed on the file that made it, not on the next one.
 */
const SETTLE_MS = 5000;
const POLL_MS = 25;

function counts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) m.set(type, (m.get(type) ?? 0) + 1);
  return m;
}

function extra(now: Map<string, number>, before: Map<string, number>): string[] {
  return [...now].flatMap(([type, n]) =>
    n > (before.get(type) ?? 0) ? [`${type} ×${n - (before.get(type) ?? 0)}`] : [],
  );
}

export default class HandleCheckEnvironment extends NodeEnvironment {
  private baseline = new Map<string, number>();

  override async setup(): Promise<void> {
    await super.setup();
    this.baseline = counts();
  }

  override async teardown(): Promise<void> {
    await super.teardown();
    const deadline = Date.now() + SETTLE_MS;
    let left = extra(counts(), this.baseline);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS).unref());
      left = extra(counts(), this.baseline);
    }
    if (left.length > 0) {
      throw new Error(`the test file left open: ${left.join(', ')} (close what it started in afterAll)`);
    }
  }
}
