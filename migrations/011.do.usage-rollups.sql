-- Statistics (issue 14): day buckets rolled up from hours, LLM usage per feature, and the reads
-- that answer `GET /stats/*` from the buckets instead of the source tables.

-- Day buckets beside minutes and hours. A day row is the sum of its hours' rows (the stats job of
-- an hour rewrites its day); its percentile columns stay NULL (percentiles do not add up).
ALTER TABLE usage_stats DROP CONSTRAINT usage_stats_granularity_check;
ALTER TABLE usage_stats ADD CONSTRAINT usage_stats_granularity_check
  CHECK (granularity IN ('minute', 'hour', 'day'));

-- LLM requests, tokens and cost of one bucket per agent and feature (reply, planner, memory,
-- emoji, other: `llm_usage.request_type` grouped), written with the bucket's usage_stats rows.
CREATE TABLE usage_feature_stats (
  tenant_id          text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  granularity        text NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
  bucket_start       timestamptz NOT NULL,
  agent_id           text NOT NULL,
  feature            text NOT NULL CHECK (feature IN ('reply', 'planner', 'memory', 'emoji', 'other')),
  llm_requests       integer NOT NULL DEFAULT 0,
  prompt_tokens      bigint NOT NULL DEFAULT 0,
  completion_tokens  bigint NOT NULL DEFAULT 0,
  cost               numeric(14, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, granularity, bucket_start, agent_id, feature)
);
SELECT maihive_enable_tenant_rls('usage_feature_stats'::regclass);

-- `GET /stats/tenants` (platform admins) sums every tenant's buckets of a period in one
-- statement: the platform unit of work may read (never write) the usage buckets of all tenants.
-- They are figures about tenants, not their content; every other tenant table stays closed to it.
CREATE POLICY platform_read ON usage_stats FOR SELECT
  USING ((SELECT current_setting('app.platform_access', true)) = 'on');
CREATE POLICY platform_read ON usage_feature_stats FOR SELECT
  USING ((SELECT current_setting('app.platform_access', true)) = 'on');

-- A period of every tenant's buckets (the primary key leads with the tenant).
CREATE INDEX usage_stats_by_period ON usage_stats (granularity, bucket_start);
