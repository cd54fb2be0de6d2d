/** One step of a `close()`: stop a timer, close a client, quit a connection. */
export type CloseStep = () => unknown;

/**
 * Runs the cleanup steps in order, each even when an earlier one failed (a step that throws does
 * not leave a connection open behind it), then fails with every failure (`AggregateError`).
 */
export async function closeAll(steps: readonly CloseStep[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, 'shutdown failed');
}

/** `closeAll` for steps that do not depend on each other: all at once. */
export async function closeAllAtOnce(steps: readonly CloseStep[]): Promise<void> {
  // `Promise.resolve().then`: a step that throws synchronously is a rejection like any other.
  const results = await Promise.allSettled(steps.map((step) => Promise.resolve().then(step)));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) throw new AggregateError(failures, 'shutdown failed');
}
