import type { TenantDb } from '../database';

export interface AgentAccountRow {
  tenant_id: string;
  platform: string;
  account_id: string;
  agent_id: string;
  nickname: string | null;
  aliases: string[];
  created_at: Date;
}

export interface AccountInput {
  platform: string;
  account_id: string;
  nickname?: string | undefined;
  aliases?: string[] | undefined;
}

export interface AccountClaim {
  platform: string;
  account_id: string;
  agent_id: string;
}

/** Which of these bot accounts another agent of the unit's tenant already answers as. */
export async function accountsClaimedByOthers(
  db: TenantDb,
  agentId: string,
  accounts: readonly AccountInput[],
): Promise<AccountClaim[]> {
  if (accounts.length === 0) return [];
  const { rows } = await db.query<AccountClaim>(
    `SELECT a.platform, a.account_id, a.agent_id
     FROM agent_accounts a
     JOIN unnest($3::text[], $4::text[]) AS w(platform, account_id)
       ON a.platform = w.platform AND a.account_id = w.account_id
     WHERE a.tenant_id = $1 AND a.agent_id <> $2
     ORDER BY a.platform, a.account_id`,
    [db.ctx.tenantId, agentId, accounts.map((a) => a.platform), accounts.map((a) => a.account_id)],
  );
  return rows;
}

/**
 * Makes the agent's rows equal to `accounts` (its `config.accounts`). A concurrent claim of the same
 * account by another agent fails on the primary key (409), never yields two owners.
 */
export async function replaceAgentAccounts(
  db: TenantDb,
  agentId: string,
  accounts: readonly AccountInput[],
): Promise<void> {
  await db.query('DELETE FROM agent_accounts WHERE tenant_id = $1 AND agent_id = $2', [
    db.ctx.tenantId,
    agentId,
  ]);
  if (accounts.length === 0) return;
  // Aliases travel as one JSON array per account: unnest cannot take a ragged text[][].
  await db.query(
    `INSERT INTO agent_accounts (tenant_id, platform, account_id, agent_id, nickname, aliases)
     SELECT $1, u.platform, u.account_id, $2, u.nickname,
            ARRAY(SELECT jsonb_array_elements_text(u.aliases))
     FROM unnest($3::text[], $4::text[], $5::text[], $6::jsonb[]) AS u(platform, account_id, nickname, aliases)`,
    [
      db.ctx.tenantId,
      agentId,
      accounts.map((a) => a.platform),
      accounts.map((a) => a.account_id),
      accounts.map((a) => a.nickname ?? null),
      accounts.map((a) => JSON.stringify(a.aliases ?? [])),
    ],
  );
}

/** The agent that answers as a bot account (adapters: OneBot `self_id`, maim account). */
export async function findAgentByAccount(
  db: TenantDb,
  platform: string,
  accountId: string,
): Promise<AgentAccountRow | undefined> {
  const { rows } = await db.query<AgentAccountRow>(
    'SELECT * FROM agent_accounts WHERE tenant_id = $1 AND platform = $2 AND account_id = $3',
    [db.ctx.tenantId, platform, accountId],
  );
  return rows[0];
}

export async function listAgentAccounts(db: TenantDb, agentId: string): Promise<AgentAccountRow[]> {
  const { rows } = await db.query<AgentAccountRow>(
    'SELECT * FROM agent_accounts WHERE tenant_id = $1 AND agent_id = $2 ORDER BY platform, account_id',
    [db.ctx.tenantId, agentId],
  );
  return rows;
}
