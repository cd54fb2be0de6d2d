-- The memory, stats and delivery workers: memory cursors per chat stream, the index the usage
-- buckets are recomputed from, and webhook deliveries (with their dead letters).

-- Two cursors per chat stream, each the (created_at, message_id) of the last inbound message
-- handled (NULL = none yet): facts/preferences extracted up to `memory_scanned_*`, conversation
-- summarised up to `memory_summarized_*`. The summary cursor advances by compare-and-set in the
-- transaction that stores the summary, so two jobs never summarise the same messages twice.
ALTER TABLE chat_streams
  ADD COLUMN memory_scanned_at timestamptz,
  ADD COLUMN memory_scanned_id text,
  ADD COLUMN memory_summarized_at timestamptz,
  ADD COLUMN memory_summarized_id text;

-- A tenant's messages of one minute or hour, for the usage buckets (and per-tenant activity
-- statistics). The stream index cannot answer a tenant-wide time range; a BRIN on created_at
-- would make each tenant's recompute read every tenant's rows of the period.
CREATE INDEX messages_by_time ON messages (tenant_id, created_at);

-- One row per bot reply pushed (or given up on) to the agent's webhook. `delivered` rows make a
-- duplicate job a no-op; `dead_letter` rows are what operators list and retry (`requeued` once
-- they did, with `requeue_count` naming the retry's job). The URL is the one last tried; the
-- secret is never stored here.
CREATE TABLE deliveries (
  tenant_id         text NOT NULL,
  message_id        text NOT NULL,
  agent_id          text NOT NULL,
  platform          text NOT NULL,
  chat_stream_id    text NOT NULL,
  status            text NOT NULL CHECK (status IN ('delivered', 'dead_letter', 'requeued')),
  webhook_url       text NOT NULL,
  attempts          integer NOT NULL DEFAULT 0,
  last_http_status  integer,
  last_error        text,
  requeue_count     integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  delivered_at      timestamptz,
  PRIMARY KEY (tenant_id, message_id),
  FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, message_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX deliveries_by_status ON deliveries (tenant_id, status, updated_at DESC, message_id DESC);

SELECT maihive_enable_tenant_rls('deliveries'::regclass);
