/**
 * Splits a V8 CPU profile (`.cpuprofile`, as the inspector writes it) into the stages of a request:
 * each sample's time goes to the innermost frame on its stack that a stage claims, so time spent in
 * ioredis on behalf of the admission script counts as `redis client`, not as `admission`. Samples
 * no stage claims are `other`; the profiler's `(idle)` samples are left out. Used by
 * `bench:ingress` to report CPU µs per send by stage (BENCH_PROFILE_DIR).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Stages in the order they claim a frame: the first whose pattern matches `function@url` wins. */
const STAGES: readonly (readonly [string, RegExp])[] = [
  ['garbage collection', /^\(garbage collector\)@/],
  ['redis client (ioredis)', /node_modules\/ioredis\//],
  ['bullmq job building', /node_modules\/(bullmq|msgpackr)\//],
  ['validation (zod)', /node_modules\/zod\//],
  ['authentication', /\/src\/auth\//],
  ['admission and enqueue', /\/src\/(ingress|queues|redis)\//],
  ['configuration lookup', /\/src\/(configuration|domain\/configuration)\//],
  ['route, envelope, input checks', /\/src\/api\//],
  ['other MaiHive code', /\/src\//],
  ['body parsing', /node_modules\/(body-parser|raw-body|iconv-lite|type-is|content-type)\//],
  ['express and router', /node_modules\/(express|router|path-to-regexp|finalhandler|send|on-finished)\//],
  ['logging', /node_modules\/(pino|sonic-boom)/],
  [
    'node http and sockets',
    /^[^@]*@node:(_http|http|net|internal\/(streams|stream_base|http))|^(writev|writeBuffer|writeUtf8String|writeString)@/,
  ],
];

/** CPU time per stage, µs, over the whole profile (idle excluded). */
export function stageTimes(profile: CpuProfile): Record<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOfNode = new Map<number, string | null>();
  const stageOf = (id: number): string => {
    const path: number[] = [];
    let found: string | null | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      found = stageOfNode.get(cur);
      if (found !== undefined) break;
      const { functionName, url } = byId.get(cur)!.callFrame;
      const frame = `${functionName}@${url}`;
      const claimed = STAGES.find(([, pattern]) => pattern.test(frame));
      if (claimed) {
        found = claimed[0];
        path.push(cur);
        break;
      }
      path.push(cur);
    }
    // Memoised for every node walked: a stack shares its stage with the frames below the claim.
    for (const n of path) stageOfNode.set(n, found ?? null);
    return found ?? 'other';
  };
  const times: Record<string, number> = {};
  profile.samples.forEach((id, i) => {
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    const stage = stageOf(id);
    times[stage] = (times[stage] ?? 0) + (profile.timeDeltas[i] ?? 0);
  });
  return times;
}

/** The stages' times as µs per request, largest first, scaled to the measured CPU per request. */
export function perRequest(times: Record<string, number>, cpuUsPerRequest: number): Record<string, number> {
  const total = Object.values(times).reduce((a, b) => a + b, 0) || 1;
  const entries = Object.entries(times)
    .map(([stage, us]) => [stage, Math.round((us / total) * cpuUsPerRequest)] as const)
    .sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(entries);
}
