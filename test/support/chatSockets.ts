import type { TestApp } from './testApp';
import { waitFor } from './waitFor';

/**
 * The arrangement the chat-socket tests share (OneBot reverse WebSocket, maim_message): tenants
 * `acme` (agent `bot1`) and `globex` (agent `gbot`), whose bots have the same QQ number, so that
 * each tenant's socket must get its own replies.
 */

/** The QQ number of both tenants' bots. */
export const BOT_QQ = '1145141919';

/** An API key of the tenant, made by its admin through the API. */
export async function createKey(
  app: TestApp,
  tenantId: string,
  body: Record<string, unknown>,
): Promise<string> {
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId });
  const res = await app.request('POST', '/auth/api-keys', { token, body });
  expect(res.status).toBe(201);
  return res.body.data.api_key as string;
}

/** Creates both tenants, their agents and bot accounts; returns an agent-bound key of each agent. */
export async function seedChatTenants(
  app: TestApp,
  keyName: string,
): Promise<{ acmeKey: string; globexKey: string }> {
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings) VALUES
       ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}'),
       ('globex', 'Globex', '{}')`,
  );
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', '麦麦'), ('globex', 'gbot', '小G')
     ON CONFLICT DO NOTHING`,
  );
  await app.t.admin(
    `INSERT INTO agent_accounts (tenant_id, platform, account_id, agent_id, nickname, aliases) VALUES
       ('acme', 'qq', $1, 'bot1', '麦麦', '{}'), ('globex', 'qq', $1, 'gbot', '小G', '{}')`,
    [BOT_QQ],
  );
  return {
    acmeKey: await createKey(app, 'acme', { name: keyName, role: 'agent', agent_id: 'bot1' }),
    globexKey: await createKey(app, 'globex', { name: keyName, role: 'agent', agent_id: 'gbot' }),
  };
}

/** The bot's reply in a tenant's chat stream, once stored. */
export function replyIn(
  app: TestApp,
  tenantId: string,
  chatStreamId: string,
): Promise<{ message_id: string; content: string }> {
  return waitFor(async () => {
    const { rows } = await app.t.admin<{ message_id: string; content: string }>(
      `SELECT message_id, content FROM messages WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'out'`,
      [tenantId, chatStreamId],
    );
    return rows[0];
  });
}
