/** The isolation settings, the backend and read-only mode, as a connection or unit of work sees them. */
const SESSION_SETTINGS_SQL = `
  SELECT pg_backend_pid() AS pid,
         current_setting('app.tenant_id', true) AS tenant_id,
         current_setting('app.agent_id', true) AS agent_id,
         current_setting('app.platform', true) AS platform,
         current_setting('app.chat_stream_id', true) AS chat_stream_id,
         current_setting('app.platform_access', true) AS platform_access,
         current_setting('transaction_read_only') AS read_only`;

export interface SessionSettings {
  pid: number;
  tenant_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  platform_access: string;
  read_only: string;
}

/** No isolation context at all. */
export const NO_CONTEXT = {
  tenant_id: '',
  agent_id: '',
  platform: '',
  chat_stream_id: '',
  platform_access: '',
};

/** The settings read through `source`, an unset one (NULL on a fresh session, '' once reverted) as ''. */
export async function sessionSettings(source: {
  query(text: string): Promise<{ rows: unknown[] }>;
}): Promise<SessionSettings> {
  const row = (await source.query(SESSION_SETTINGS_SQL)).rows[0] as Record<
    keyof SessionSettings,
    string | null
  >;
  return {
    pid: Number(row.pid),
    tenant_id: row.tenant_id ?? '',
    agent_id: row.agent_id ?? '',
    platform: row.platform ?? '',
    chat_stream_id: row.chat_stream_id ?? '',
    platform_access: row.platform_access ?? '',
    read_only: row.read_only ?? '',
  };
}
