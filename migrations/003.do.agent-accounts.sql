-- Bot accounts of agents, and tenant counts for the platform's tenant list.

-- Which agent answers as a given bot account on a platform (QQ number, Discord id, maim account).
-- Adapters map an incoming event's (platform, self id) to an agent with it; the agent's
-- `config.accounts` is the source, kept in sync in the same transaction. The primary key makes a
-- bot account belong to at most one agent of a tenant.
CREATE TABLE agent_accounts (
  tenant_id   text NOT NULL,
  platform    text NOT NULL CHECK (platform ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  account_id  text NOT NULL CHECK (account_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  agent_id    text NOT NULL,
  nickname    text,
  aliases     text[] NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, platform, account_id),
  FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
CREATE INDEX agent_accounts_by_agent ON agent_accounts (tenant_id, agent_id);
SELECT maihive_enable_tenant_rls('agent_accounts'::regclass);

-- Agent and chat-stream counts of the given tenants, for `GET /tenants` (platform admins): one
-- round trip for a whole page instead of one tenant unit of work per listed tenant.
--
-- The platform unit of work sees no tenant rows (RLS), so this function is SECURITY DEFINER and
-- narrows `app.tenant_id` to one tenant at a time, like `maihive_create_default_agent`: the tenant
-- policies still apply to every count, whether or not the owner bypasses RLS. It only answers
-- inside a platform unit of work (`app.platform_access = 'on'`), and it returns counts, never rows.
-- EXECUTE stays granted to PUBLIC because the application role's name is chosen at deploy time.
CREATE FUNCTION maihive_tenant_counts(ids text[])
RETURNS TABLE (tenant_id text, agent_count bigint, chat_stream_count bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $fn$
DECLARE
  previous text := current_setting('app.tenant_id', true);
  t text;
BEGIN
  IF coalesce(current_setting('app.platform_access', true), '') <> 'on' THEN
    RAISE EXCEPTION 'maihive_tenant_counts needs a platform unit of work' USING ERRCODE = '42501';
  END IF;
  FOREACH t IN ARRAY coalesce(ids, '{}') LOOP
    PERFORM set_config('app.tenant_id', t, true);
    tenant_id := t;
    SELECT count(*) INTO agent_count FROM agents a WHERE a.tenant_id = t;
    SELECT count(*) INTO chat_stream_count FROM chat_streams s WHERE s.tenant_id = t;
    RETURN NEXT;
  END LOOP;
  PERFORM set_config('app.tenant_id', coalesce(previous, ''), true);
END
$fn$;
