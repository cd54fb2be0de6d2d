-- Emoji and plugins (issue 13). The packs, their emoji (an image is stored once per tenant: the
-- existing UNIQUE (tenant_id, image_hash) of `emojis`) and the tenants' plugin grants
-- (`tenant_plugins`) are tables of 001; this adds what they lacked.

-- One row per emoji sent (POST /emoji/send, the heartflow's `emoji` action, a plugin), for
-- GET /emoji/statistics?period. No foreign key to `emojis`: deleting a pack keeps its history.
CREATE TABLE emoji_usage (
  tenant_id       text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  usage_id        bigint GENERATED ALWAYS AS IDENTITY,
  emoji_id        text,
  pack_id         text,
  emoji           text,
  emotion         text,
  agent_id        text NOT NULL,
  platform        text NOT NULL,
  chat_stream_id  text NOT NULL,
  trigger_type    text NOT NULL CHECK (trigger_type IN ('auto', 'manual', 'heartflow', 'plugin')),
  message_id      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, usage_id)
);
CREATE INDEX emoji_usage_recent ON emoji_usage (tenant_id, created_at DESC);

-- What a plugin keeps between calls (keyword replies, counters), per tenant and plugin: a plugin
-- reads and writes only its own keys of its own tenant (PluginAPI `storage`).
CREATE TABLE plugin_state (
  tenant_id   text NOT NULL,
  plugin_id   text NOT NULL,
  key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 256),
  value       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plugin_id, key),
  FOREIGN KEY (tenant_id, plugin_id) REFERENCES tenant_plugins (tenant_id, plugin_id) ON DELETE CASCADE
);

SELECT maihive_enable_tenant_rls(t::regclass) FROM unnest(ARRAY['emoji_usage', 'plugin_state']) AS t;
