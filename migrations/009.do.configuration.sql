-- Hierarchical configuration (issue 12): `config_entries` (migration 001) holds the values of one
-- category at one scope (tenant < agent < platform < chat), `config_history` every change of them.
--
-- One source of truth per value:
-- * an agent's `llm`, `delivery` and `memory` values stay in `agents.config` (what
--   `/agents/{id}/config` reads and writes); the configuration API reads and writes them there;
-- * the tenant's `content_policy` stays in `tenants.settings` (what `POST/PUT /tenants` write);
-- * everything else lives in `config_entries`. A chat stream's heartflow settings move there from
--   `chat_streams.heartflow_config` (below), which is dropped so that no second copy can disagree.

-- What a history row records besides the scope's values after the change: the kind of change and,
-- per key changed, its value before and after (secrets as "***").
ALTER TABLE config_history
  ADD COLUMN action  text NOT NULL DEFAULT 'put' CHECK (action IN ('put', 'reset')),
  ADD COLUMN changes jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX config_history_scope ON config_history (tenant_id, category, scope, agent_id, platform, chat_stream_id, version DESC);

-- data-migration: chat_streams.heartflow_config
INSERT INTO config_entries (tenant_id, category, scope, chat_stream_id, config, version, updated_by)
SELECT tenant_id, 'heartflow', 'chat', chat_stream_id, heartflow_config, 1, 'migration 009'
FROM chat_streams
WHERE heartflow_config IS NOT NULL AND heartflow_config <> '{}'::jsonb;

INSERT INTO config_history (tenant_id, category, scope, chat_stream_id, version, config, changed_by, changes)
SELECT tenant_id, 'heartflow', 'chat', chat_stream_id, 1, heartflow_config, 'migration 009',
       (SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('from', NULL, 'to', v)), '{}'::jsonb)
          FROM jsonb_each(heartflow_config) AS e(k, v))
FROM chat_streams
WHERE heartflow_config IS NOT NULL AND heartflow_config <> '{}'::jsonb;

ALTER TABLE chat_streams DROP COLUMN heartflow_config;

-- A chat's or an agent's values go with it (other scopes leave these columns NULL: not checked).
ALTER TABLE config_entries
  ADD CONSTRAINT config_entries_chat_stream FOREIGN KEY (tenant_id, chat_stream_id)
    REFERENCES chat_streams (tenant_id, chat_stream_id) ON DELETE CASCADE,
  ADD CONSTRAINT config_entries_agent FOREIGN KEY (tenant_id, agent_id)
    REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE;
