/** What `dispatcherChild.ts` jobs take and where they record themselves, for the tests that read it. */
export interface ChildJobData {
  sleepMs: number;
}

/** Keys the jobs record into (under the test's prefix). */
export const recordKeys = (prefix: string) => ({
  log: `${prefix}record:log`,
  running: (tenantId: string) => `${prefix}record:running:${tenantId}`,
  peak: (tenantId: string) => `${prefix}record:peak:${tenantId}`,
});
