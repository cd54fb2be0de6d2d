import type { Job } from 'bullmq';

import type { Database } from '../db/database';
import {
  lockTenantRollups,
  purgeUsageBuckets,
  recomputeFeatureBucket,
  rewriteRunningTotals,
  rollUpDay,
} from '../db/repositories/usageRollups';
import {
  lockUsageBucket,
  readBucketSource,
  replaceUsageBucket,
  type UsageBucket,
} from '../db/repositories/usageStats';
import { createIsolationContext } from '../domain/isolationContext';
import { BUCKET_MS, bucketStart, latencyPercentiles } from '../domain/usageBuckets';
import { UnrecoverableJobError } from '../errors';
import type { Logger } from '../logger';
import { assertJobTenant, type StatsJobData } from './jobs';

export interface StatsDeps {
  db: Database;
  logger: Logger;
  /** How long minute and hour buckets are kept (`STATS_*_RETENTION_*`). Default 48 h and 35 days. */
  retention?: { minuteHours: number; hourDays: number };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface StatsJobResult {
  granularity: StatsJobData['granularity'];
  bucketStart: string;
  /** Agents with figures in the bucket. */
  agents: number;
}

/**
 * Recomputes one usage bucket (a minute or an hour) of a tenant from `messages` and `llm_usage`,
 * and makes its `usage_stats` and `usage_feature_stats` rows exactly that. Nothing is ever
 * incremented, so a retried, duplicated or late job rewrites the same figures: runs can only make
 * a bucket more current. An hour's job also rewrites its day (the sum of the day's hours), the
 * tenant's running totals from the hour and from the day onwards (what `/stats/tenants` reads),
 * and purges the tenant's minutes and hours past retention, counted back from the hour.
 */
export async function processStatsJob(deps: StatsDeps, data: StatsJobData): Promise<StatsJobResult> {
  const size = BUCKET_MS[data.granularity];
  if (size === undefined || bucketStart(data.bucketStart, data.granularity) !== data.bucketStart) {
    throw new UnrecoverableJobError(
      `stats job for an unaligned ${data.granularity} bucket ${data.bucketStart}`,
    );
  }
  const start = new Date(data.bucketStart);
  const end = new Date(data.bucketStart + size);
  const ctx = createIsolationContext({ tenantId: data.tenantId });
  const agents = await deps.db.withTenant(ctx, async (db) => {
    await lockUsageBucket(db, data.granularity, start);
    const sources = await readBucketSource(db, start, end);
    const buckets: UsageBucket[] = sources.map((s) => ({
      agentId: s.agentId,
      messagesIn: s.messagesIn,
      replies: s.replies,
      noReplies: s.noReplies,
      failures: s.failures,
      llmRequests: s.llmRequests,
      promptTokens: s.promptTokens,
      completionTokens: s.completionTokens,
      cost: s.cost,
      ...latencyPercentiles(s),
    }));
    await replaceUsageBucket(db, data.granularity, start, buckets);
    await recomputeFeatureBucket(db, data.granularity, start, end);
    if (data.granularity === 'hour') {
      const day = new Date(data.bucketStart - (data.bucketStart % DAY_MS));
      await lockTenantRollups(db);
      await rollUpDay(db, day);
      await rewriteRunningTotals(db, 'hour', start);
      await rewriteRunningTotals(db, 'day', day);
      const keep = deps.retention ?? { minuteHours: 48, hourDays: 35 };
      await purgeUsageBuckets(db, {
        minutesBefore: new Date(data.bucketStart - keep.minuteHours * HOUR_MS),
        hoursBefore: new Date(data.bucketStart - keep.hourDays * DAY_MS),
      });
    }
    return buckets.length;
  });
  deps.logger.debug(
    { granularity: data.granularity, bucket_start: start.toISOString(), agents },
    'usage bucket recomputed',
  );
  return { granularity: data.granularity, bucketStart: start.toISOString(), agents };
}

/** The Dispatcher's `process` for stats jobs. */
export function statsJobRunner(deps: StatsDeps) {
  return (job: Job, tenantId: string, log: Logger = deps.logger): Promise<StatsJobResult> => {
    assertJobTenant(job, tenantId);
    return processStatsJob({ ...deps, logger: log }, job.data as StatsJobData);
  };
}
