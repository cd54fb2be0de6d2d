-- Statistics (issue 14): per-tenant running totals, so that `GET /stats/tenants` reads at most three
-- rows per tenant (its totals before the period, at its end, and its latest) instead of summing
-- every bucket of the period (30,000 day rows for 1,000 tenants × 30 days).
--
-- A row holds, for one tenant and granularity, the sum of all that tenant's usage_stats buckets of
-- that granularity up to and including `bucket_start` (all agents). The rows are dense from the
-- tenant's first bucket to its latest (`is_latest`): a bucket without figures carries the total
-- before it, so "the totals before X" is one equality lookup, `bucket_start = X - 1 bucket`, for
-- every tenant at once, or the latest row when the tenant has no bucket since. The stats job of
-- an hour rewrites the rows from its hour (and its day) onwards after rewriting the buckets; the
-- hour rows purged with their buckets keep the last one before the cut.
CREATE TABLE usage_tenant_totals (
  tenant_id          text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  granularity        text NOT NULL CHECK (granularity IN ('hour', 'day')),
  bucket_start       timestamptz NOT NULL,
  messages_in        bigint NOT NULL,
  replies            bigint NOT NULL,
  no_replies         bigint NOT NULL,
  failures           bigint NOT NULL,
  llm_requests       bigint NOT NULL,
  prompt_tokens      bigint NOT NULL,
  completion_tokens  bigint NOT NULL,
  cost               numeric(20, 6) NOT NULL,
  is_latest          boolean NOT NULL DEFAULT false,
  PRIMARY KEY (tenant_id, granularity, bucket_start)
);
SELECT maihive_enable_tenant_rls('usage_tenant_totals'::regclass);
CREATE POLICY platform_read ON usage_tenant_totals FOR SELECT
  USING ((SELECT current_setting('app.platform_access', true)) = 'on');

-- Every tenant's row of one bucket, and every tenant's latest row: one index range each.
CREATE INDEX usage_tenant_totals_by_bucket ON usage_tenant_totals (granularity, bucket_start);
CREATE INDEX usage_tenant_totals_latest ON usage_tenant_totals (granularity) WHERE is_latest;

-- The running totals of the buckets already there, dense from each tenant's first bucket to its last.
INSERT INTO usage_tenant_totals (tenant_id, granularity, bucket_start, messages_in, replies, no_replies,
                                 failures, llm_requests, prompt_tokens, completion_tokens, cost, is_latest)
SELECT s.tenant_id, s.granularity, g.bucket_start,
       sum(coalesce(b.messages_in, 0)) OVER w, sum(coalesce(b.replies, 0)) OVER w,
       sum(coalesce(b.no_replies, 0)) OVER w, sum(coalesce(b.failures, 0)) OVER w,
       sum(coalesce(b.llm_requests, 0)) OVER w, sum(coalesce(b.prompt_tokens, 0)) OVER w,
       sum(coalesce(b.completion_tokens, 0)) OVER w, sum(coalesce(b.cost, 0)) OVER w,
       g.bucket_start = s.last
FROM (SELECT tenant_id, granularity, min(bucket_start) AS first, max(bucket_start) AS last
      FROM usage_stats WHERE granularity IN ('hour', 'day') GROUP BY 1, 2) s
CROSS JOIN LATERAL generate_series(s.first, s.last,
  CASE s.granularity WHEN 'hour' THEN interval '1 hour' ELSE interval '24 hours' END) AS g(bucket_start)
LEFT JOIN (SELECT tenant_id, granularity, bucket_start, sum(messages_in) AS messages_in, sum(replies) AS replies,
                  sum(no_replies) AS no_replies, sum(failures) AS failures, sum(llm_requests) AS llm_requests,
                  sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
                  sum(cost) AS cost
           FROM usage_stats WHERE granularity IN ('hour', 'day') GROUP BY 1, 2, 3) b
  ON b.tenant_id = s.tenant_id AND b.granularity = s.granularity AND b.bucket_start = g.bucket_start
WINDOW w AS (PARTITION BY s.tenant_id, s.granularity ORDER BY g.bucket_start);
