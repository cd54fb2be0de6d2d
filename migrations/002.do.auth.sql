-- Refresh tokens of platform admins. A platform admin has no tenant, so its refresh tokens cannot
-- live in the tenant-owned `refresh_tokens` table (whose rows belong to a tenant and reference a
-- tenant user). Same shape otherwise: opaque token, only a SHA-256 of its secret stored, rotation
-- within a family, re-use of a spent token revokes the family.
CREATE TABLE platform_refresh_tokens (
  token_id    text PRIMARY KEY,
  family_id   text NOT NULL,
  username    text NOT NULL REFERENCES platform_users (username) ON DELETE CASCADE,
  token_hash  bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX platform_refresh_tokens_family ON platform_refresh_tokens (family_id);

-- Reachable only from the platform-level unit of work, like platform_users.
ALTER TABLE platform_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_access ON platform_refresh_tokens
  USING ((SELECT current_setting('app.platform_access', true)) = 'on')
  WITH CHECK ((SELECT current_setting('app.platform_access', true)) = 'on');
