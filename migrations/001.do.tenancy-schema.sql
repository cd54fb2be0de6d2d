-- MaiHive schema, part 1: platform tables, the seed's ten T+A+C+P tables, tenant-owned tables,
-- row-level security on all of them.
--
-- Rules (see README § Isolation model):
--   * tenant_id leads every primary, unique and foreign key; foreign keys are composite, so a row
--     can only ever reference a row of its own tenant.
--   * RLS is ENABLED and FORCED on every table that has a tenant_id column. The tenant policy reads
--     app.tenant_id; RESTRICTIVE policies narrow by app.agent_id / app.platform / app.chat_stream_id
--     and pass when the setting is empty (or the row's column is NULL: an agent-wide memory is
--     visible inside each of that agent's chats).
--   * current_setting() is wrapped in (SELECT …) so the planner evaluates it once (InitPlan), and
--     NULLIF(…, '') because a setting reverted at transaction end reads '' rather than NULL.

-- Enables and forces RLS on a tenant table and creates its policies from the columns it has:
-- `tenant_isolation` (permissive) and, when the table has any of agent_id / platform /
-- chat_stream_id, one RESTRICTIVE `narrowing` policy over those columns.
--
-- The narrowing is one CASE expression rather than three OR-shaped policies on purpose: the planner
-- estimates each OR-shaped predicate at ~1/n_distinct, which made "latest 50 messages of a stream"
-- expect fewer than 50 rows and read the whole stream plus a sort instead of walking the index.
-- A CASE is opaque to the estimator (selectivity 0.5), so the plan matches the one without RLS
-- (see bench/db.ts).
CREATE FUNCTION maihive_enable_tenant_rls(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  dim text;
  pred text;
  narrowing text[] := '{}';
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  pred := $p$tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), ''))$p$;
  EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (%s) WITH CHECK (%s)', tbl, pred, pred);
  FOREACH dim IN ARRAY ARRAY['agent_id', 'platform', 'chat_stream_id'] LOOP
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = tbl AND attname = dim AND attnum > 0 AND NOT attisdropped) THEN
      narrowing := narrowing || format(
        $p$((SELECT NULLIF(current_setting('app.%1$s', true), '')) IS NULL
            OR %1$I IS NULL
            OR %1$I = (SELECT NULLIF(current_setting('app.%1$s', true), '')))$p$, dim);
    END IF;
  END LOOP;
  IF cardinality(narrowing) > 0 THEN
    pred := format('CASE WHEN %s THEN true ELSE false END', array_to_string(narrowing, ' AND '));
    EXECUTE format('CREATE POLICY narrowing ON %s AS RESTRICTIVE USING (%s) WITH CHECK (%s)', tbl, pred, pred);
  END IF;
END
$fn$;

-- ---------------------------------------------------------------------------------------------
-- Platform tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE tenants (
  tenant_id    text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name         text NOT NULL,
  description  text,
  status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  settings     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A tenant sees its own row; the platform-level unit of work (app.platform_access = 'on') sees all.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_access ON tenants
  USING ((SELECT current_setting('app.platform_access', true)) = 'on')
  WITH CHECK ((SELECT current_setting('app.platform_access', true)) = 'on');
CREATE POLICY own_tenant_read ON tenants FOR SELECT
  USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')));

CREATE TABLE platform_users (
  username       text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  password_hash  text NOT NULL,
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz
);
ALTER TABLE platform_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_users FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_access ON platform_users
  USING ((SELECT current_setting('app.platform_access', true)) = 'on')
  WITH CHECK ((SELECT current_setting('app.platform_access', true)) = 'on');

-- ---------------------------------------------------------------------------------------------
-- The seed's T+A+C+P tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE agents (
  tenant_id         text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  agent_id          text NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name              text NOT NULL,
  description       text,
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  default_platform  text,
  config            jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, agent_id)
);

CREATE TABLE chat_streams (
  tenant_id       text NOT NULL,
  chat_stream_id  text NOT NULL CHECK (chat_stream_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  agent_id        text NOT NULL,
  platform        text NOT NULL CHECK (platform ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  chat_type       text NOT NULL DEFAULT 'group' CHECK (chat_type IN ('group', 'private')),
  group_id        text,
  group_name      text,
  user_id         text,
  participants    jsonb NOT NULL DEFAULT '[]'::jsonb,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_active_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, chat_stream_id),
  -- Lets messages reference (stream, agent, platform) together, so a message can never claim a
  -- different agent or platform than its stream.
  UNIQUE (tenant_id, chat_stream_id, agent_id, platform),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX chat_streams_by_agent ON chat_streams (tenant_id, agent_id, platform);
CREATE INDEX chat_streams_recent ON chat_streams (tenant_id, last_active_at DESC);

CREATE TABLE messages (
  tenant_id           text NOT NULL,
  message_id          text NOT NULL,
  agent_id            text NOT NULL,
  platform            text NOT NULL,
  chat_stream_id      text NOT NULL,
  direction           text NOT NULL CHECK (direction IN ('in', 'out')),
  client_message_id   text,
  -- For an inbound message: the platform message it quotes. For a bot message: the message answered.
  reply_to            text,
  sender_user_id      text,
  sender_nickname     text,
  sender_cardname     text,
  content             text NOT NULL,
  segments            jsonb NOT NULL DEFAULT '[]'::jsonb,
  is_mentioned        boolean NOT NULL DEFAULT false,
  interest            real,
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'processing', 'replied', 'no_reply', 'failed', 'sent')),
  response            text,
  actions_taken       jsonb,
  tokens_used         integer,
  queue_wait_ms       integer,
  processing_time_ms  integer,
  error               text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  processed_at        timestamptz,
  PRIMARY KEY (tenant_id, message_id),
  FOREIGN KEY (tenant_id, chat_stream_id, agent_id, platform)
    REFERENCES chat_streams (tenant_id, chat_stream_id, agent_id, platform) ON DELETE CASCADE
);
-- Hot path: the latest N messages of a chat stream, and cursor pages before a point in time.
CREATE INDEX messages_stream_recent ON messages (tenant_id, chat_stream_id, created_at DESC, message_id DESC);
CREATE INDEX messages_by_client_id ON messages (tenant_id, agent_id, client_message_id)
  WHERE client_message_id IS NOT NULL;

CREATE TABLE memory_chest (
  tenant_id       text NOT NULL,
  memory_id       text NOT NULL,
  agent_id        text NOT NULL,
  platform        text,
  chat_stream_id  text,
  scope           text NOT NULL CHECK (scope IN ('agent', 'platform', 'chat')),
  title           text,
  content         text NOT NULL,
  memory_type     text NOT NULL DEFAULT 'fact'
                  CHECK (memory_type IN ('preference', 'fact', 'conversation', 'emotion', 'summary')),
  importance      real NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
  tags            text[] NOT NULL DEFAULT '{}',
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  locked          boolean NOT NULL DEFAULT false,
  access_count    integer NOT NULL DEFAULT 0,
  last_accessed   timestamptz,
  expires_at      timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, memory_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE,
  CHECK (CASE scope
           WHEN 'agent' THEN platform IS NULL AND chat_stream_id IS NULL
           WHEN 'platform' THEN platform IS NOT NULL AND chat_stream_id IS NULL
           ELSE platform IS NOT NULL AND chat_stream_id IS NOT NULL
         END)
);
CREATE INDEX memory_chest_by_scope ON memory_chest (tenant_id, agent_id, scope, platform, chat_stream_id, created_at DESC);

CREATE TABLE llm_usage (
  tenant_id          text NOT NULL,
  usage_id           bigint GENERATED ALWAYS AS IDENTITY,
  agent_id           text NOT NULL,
  platform           text,
  chat_stream_id     text,
  message_id         text,
  provider           text NOT NULL,
  model_name         text NOT NULL,
  request_type       text NOT NULL,
  prompt_tokens      integer NOT NULL DEFAULT 0,
  completion_tokens  integer NOT NULL DEFAULT 0,
  total_tokens       integer NOT NULL DEFAULT 0,
  cost               numeric(14, 6) NOT NULL DEFAULT 0,
  latency_ms         integer,
  status             text NOT NULL CHECK (status IN ('success', 'error', 'timeout')),
  error              text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, usage_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX llm_usage_recent ON llm_usage (tenant_id, created_at DESC);

CREATE TABLE expression (
  tenant_id       text NOT NULL,
  expression_id   text NOT NULL,
  agent_id        text NOT NULL,
  platform        text,
  chat_stream_id  text,
  situation       text NOT NULL,
  style           text NOT NULL,
  context         text,
  count           real NOT NULL DEFAULT 1,
  last_active_at  timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, expression_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX expression_by_stream ON expression (tenant_id, agent_id, chat_stream_id, last_active_at DESC);

CREATE TABLE action_records (
  tenant_id       text NOT NULL,
  action_id       text NOT NULL,
  agent_id        text NOT NULL,
  platform        text NOT NULL,
  chat_stream_id  text NOT NULL,
  message_id      text,
  action_name     text NOT NULL,
  action_data     jsonb NOT NULL DEFAULT '{}'::jsonb,
  reasoning       text,
  done            boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, action_id),
  FOREIGN KEY (tenant_id, chat_stream_id, agent_id, platform)
    REFERENCES chat_streams (tenant_id, chat_stream_id, agent_id, platform) ON DELETE CASCADE
);
CREATE INDEX action_records_by_stream ON action_records (tenant_id, chat_stream_id, created_at DESC);

CREATE TABLE jargon (
  tenant_id       text NOT NULL,
  jargon_id       text NOT NULL,
  agent_id        text NOT NULL,
  platform        text,
  chat_stream_id  text,
  term            text NOT NULL,
  meaning         text,
  count           integer NOT NULL DEFAULT 1,
  is_global       boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, jargon_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX jargon_by_term ON jargon (tenant_id, agent_id, term);

CREATE TABLE person_info (
  tenant_id      text NOT NULL,
  person_id      text NOT NULL,
  agent_id       text NOT NULL,
  platform       text NOT NULL,
  user_id        text NOT NULL,
  person_name    text,
  name_reason    text,
  nickname       text,
  is_known       boolean NOT NULL DEFAULT false,
  memory_points  jsonb NOT NULL DEFAULT '[]'::jsonb,
  know_times     integer NOT NULL DEFAULT 0,
  know_since     timestamptz,
  last_know      timestamptz,
  PRIMARY KEY (tenant_id, person_id),
  UNIQUE (tenant_id, agent_id, platform, user_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);

CREATE TABLE group_info (
  tenant_id         text NOT NULL,
  agent_id          text NOT NULL,
  platform          text NOT NULL,
  group_id          text NOT NULL,
  group_name        text,
  group_impression  text,
  member_list       jsonb NOT NULL DEFAULT '[]'::jsonb,
  topic             text,
  member_count      integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  last_active_at    timestamptz,
  PRIMARY KEY (tenant_id, agent_id, platform, group_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);

-- ---------------------------------------------------------------------------------------------
-- Tenant-owned tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE users (
  tenant_id      text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  username       text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  password_hash  text NOT NULL,
  role           text NOT NULL CHECK (role IN ('tenant_admin', 'operator', 'agent', 'reader')),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz,
  PRIMARY KEY (tenant_id, username)
);

CREATE TABLE api_keys (
  tenant_id     text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  key_id        text NOT NULL,
  name          text NOT NULL,
  role          text NOT NULL CHECK (role IN ('tenant_admin', 'operator', 'agent', 'reader')),
  agent_id      text,
  key_hash      bytea NOT NULL,
  created_by    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  PRIMARY KEY (tenant_id, key_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);

CREATE TABLE refresh_tokens (
  tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  token_id     text NOT NULL,
  family_id    text NOT NULL,
  username     text NOT NULL,
  token_hash   bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  revoked_at   timestamptz,
  PRIMARY KEY (tenant_id, token_id),
  FOREIGN KEY (tenant_id, username) REFERENCES users (tenant_id, username) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);

CREATE TABLE emoji_packs (
  tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  pack_id      text NOT NULL CHECK (pack_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name         text NOT NULL,
  description  text,
  platform     text,
  category     text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, pack_id)
);

CREATE TABLE emojis (
  tenant_id     text NOT NULL,
  emoji_id      text NOT NULL,
  pack_id       text NOT NULL,
  emoji         text,
  image_hash    text,
  image_data    bytea,
  format        text,
  description   text,
  emotion       text NOT NULL,
  tags          text[] NOT NULL DEFAULT '{}',
  usage_weight  real NOT NULL DEFAULT 1,
  usage_count   integer NOT NULL DEFAULT 0,
  last_used_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, emoji_id),
  UNIQUE (tenant_id, image_hash),
  FOREIGN KEY (tenant_id, pack_id) REFERENCES emoji_packs (tenant_id, pack_id) ON DELETE CASCADE,
  CHECK (emoji IS NOT NULL OR image_hash IS NOT NULL)
);
CREATE INDEX emojis_by_emotion ON emojis (tenant_id, emotion);

CREATE TABLE tenant_plugins (
  tenant_id     text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  plugin_id     text NOT NULL CHECK (plugin_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  status        text NOT NULL DEFAULT 'disabled' CHECK (status IN ('enabled', 'disabled')),
  config        jsonb NOT NULL DEFAULT '{}'::jsonb,
  permissions   text[] NOT NULL DEFAULT '{}',
  installed_at  timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plugin_id)
);

CREATE TABLE config_entries (
  tenant_id       text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  entry_id        bigint GENERATED ALWAYS AS IDENTITY,
  category        text NOT NULL
                  CHECK (category IN ('llm', 'heartflow', 'memory', 'emoji', 'delivery', 'content_policy')),
  scope           text NOT NULL CHECK (scope IN ('tenant', 'agent', 'platform', 'chat')),
  agent_id        text,
  platform        text,
  chat_stream_id  text,
  config          jsonb NOT NULL,
  version         integer NOT NULL DEFAULT 1,
  updated_by      text,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, entry_id),
  UNIQUE NULLS NOT DISTINCT (tenant_id, category, scope, agent_id, platform, chat_stream_id)
);

CREATE TABLE config_history (
  tenant_id       text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  history_id      bigint GENERATED ALWAYS AS IDENTITY,
  category        text NOT NULL,
  scope           text NOT NULL,
  agent_id        text,
  platform        text,
  chat_stream_id  text,
  version         integer NOT NULL,
  config          jsonb NOT NULL,
  changed_by      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, history_id)
);
CREATE INDEX config_history_recent ON config_history (tenant_id, category, created_at DESC);

CREATE TABLE usage_stats (
  tenant_id             text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  granularity           text NOT NULL CHECK (granularity IN ('minute', 'hour')),
  bucket_start          timestamptz NOT NULL,
  agent_id              text NOT NULL,
  messages_in           integer NOT NULL DEFAULT 0,
  replies               integer NOT NULL DEFAULT 0,
  no_replies            integer NOT NULL DEFAULT 0,
  failures              integer NOT NULL DEFAULT 0,
  llm_requests          integer NOT NULL DEFAULT 0,
  prompt_tokens         bigint NOT NULL DEFAULT 0,
  completion_tokens     bigint NOT NULL DEFAULT 0,
  cost                  numeric(14, 6) NOT NULL DEFAULT 0,
  queue_wait_ms_p50     integer,
  queue_wait_ms_p99     integer,
  processing_ms_p50     integer,
  processing_ms_p99     integer,
  PRIMARY KEY (tenant_id, granularity, bucket_start, agent_id)
);

CREATE TABLE audit_log (
  tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  audit_id     bigint GENERATED ALWAYS AS IDENTITY,
  actor        text NOT NULL,
  action       text NOT NULL,
  target_type  text,
  target_id    text,
  details      jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, audit_id)
);
CREATE INDEX audit_log_recent ON audit_log (tenant_id, created_at DESC);

-- ---------------------------------------------------------------------------------------------
-- Row-level security on every tenant table
-- ---------------------------------------------------------------------------------------------

SELECT maihive_enable_tenant_rls(t::regclass)
FROM unnest(ARRAY[
  'agents', 'chat_streams', 'messages', 'memory_chest', 'llm_usage', 'expression', 'action_records',
  'jargon', 'person_info', 'group_info', 'users', 'api_keys', 'refresh_tokens', 'emoji_packs', 'emojis',
  'tenant_plugins', 'config_entries', 'config_history', 'usage_stats', 'audit_log'
]) AS t;

-- ---------------------------------------------------------------------------------------------
-- The legacy single-tenant install lives on as tenant `default` with agent `default`.
-- ---------------------------------------------------------------------------------------------

-- Every tenant has an agent `default`. SECURITY DEFINER so that the platform-level unit of work
-- that creates a tenant can create its first agent; the tenant setting is narrowed to the new tenant
-- for the insert only, so the agents policies still apply.
CREATE FUNCTION maihive_create_default_agent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $fn$
DECLARE
  previous text := current_setting('app.tenant_id', true);
BEGIN
  PERFORM set_config('app.tenant_id', NEW.tenant_id, true);
  INSERT INTO agents (tenant_id, agent_id, name, description)
  VALUES (NEW.tenant_id, 'default', 'Default agent', 'Created with the tenant')
  ON CONFLICT DO NOTHING;
  PERFORM set_config('app.tenant_id', coalesce(previous, ''), true);
  RETURN NEW;
END
$fn$;
CREATE TRIGGER tenants_default_agent AFTER INSERT ON tenants
  FOR EACH ROW EXECUTE FUNCTION maihive_create_default_agent();

REVOKE ALL ON FUNCTION maihive_enable_tenant_rls(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION maihive_create_default_agent() FROM PUBLIC;

INSERT INTO tenants (tenant_id, name, description) VALUES ('default', 'Default tenant', 'Legacy single-tenant data');
UPDATE agents SET name = '麦麦', description = 'The legacy MaiBot' WHERE tenant_id = 'default' AND agent_id = 'default';
