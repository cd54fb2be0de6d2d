-- `maihive import-maibot`: a checkpoint per (tenant, agent, source table), so a killed import re-run
-- continues after the last batch it committed. Each batch's rows and its checkpoint advance are one
-- transaction, so a checkpoint never claims rows that were not written (nor the reverse).
CREATE TABLE import_checkpoints (
  tenant_id       text NOT NULL,
  agent_id        text NOT NULL,
  source_table    text NOT NULL,
  -- The MaiBot generation the rows were read as ('0.x' or '1.x').
  generation      text NOT NULL,
  -- rowid of the last source row handled (imported or skipped); the next run reads rows after it.
  last_source_id  bigint NOT NULL DEFAULT 0,
  rows_read       bigint NOT NULL DEFAULT 0,
  rows_imported   bigint NOT NULL DEFAULT 0,
  rows_skipped    bigint NOT NULL DEFAULT 0,
  -- {"reason": count} of the rows skipped.
  skipped         jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, agent_id, source_table),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
SELECT maihive_enable_tenant_rls('import_checkpoints'::regclass);

-- llm_usage rows have a generated key, so an imported row carries where it came from
-- ('maibot:<agent>:<rowid>'); the unique index makes a re-run insert nothing twice.
ALTER TABLE llm_usage ADD COLUMN import_ref text;
CREATE UNIQUE INDEX llm_usage_import_ref ON llm_usage (tenant_id, import_ref) WHERE import_ref IS NOT NULL;
