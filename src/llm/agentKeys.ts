import type { Database } from '../db/database';
import { agentsWithSecretsForUpdate, replaceAgentConfig } from '../db/repositories/agents';
import { allTenantIds } from '../db/repositories/tenants';
import { AgentConfig, mapSealedSecrets, sealAgentSecrets } from '../domain/agentConfig';
import { createIsolationContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import { type SecretBox, SecretUnreadableError } from './secretBox';

export interface SealAgentKeysOptions {
  db: Database;
  box: SecretBox;
  logger: Logger;
  /**
   * Also open every sealed secret: re-seal those sealed under a previous server key (rotation) and
   * report those no configured key opens. Workers do (they are the ones that must open them).
   */
  verify: boolean;
  /** Stops the pass between tenants (shutdown); what is done stays done. */
  signal?: AbortSignal;
}

export interface SealAgentKeysResult {
  /** Agents whose plaintext secrets (stored before secrets were sealed) are now sealed. */
  sealed: number;
  /** Agents whose secrets sealed under a previous server key are now sealed under the current one. */
  resealed: number;
  /** Agents with a sealed secret that no configured server key opens. */
  unreadable: { tenant_id: string; agent_id: string }[];
}

/**
 * The start-up step that keeps agents' secrets (LLM API keys, webhook secrets: `AGENT_SECRETS`)
 * encrypted at rest: every secret still stored in plaintext (rows written before it was sealed)
 * is sealed under the current server key, and with `verify` every sealed secret is opened once,
 * re-sealed if a previous key opened it, and reported loudly if none does (and left as it is, for
 * the right key to open later). One short unit of work per tenant; running it again (or in
 * several processes at once) changes nothing more, as the rows are locked and re-read.
 */
export async function sealStoredAgentKeys(o: SealAgentKeysOptions): Promise<SealAgentKeysResult> {
  const result: SealAgentKeysResult = { sealed: 0, resealed: 0, unreadable: [] };
  const tenantIds = await o.db.withPlatform((db) => allTenantIds(db));
  for (const tenantId of tenantIds) {
    if (o.signal?.aborted) break;
    await o.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
      for (const row of await agentsWithSecretsForUpdate(db, { plaintextOnly: !o.verify })) {
        const parsed = AgentConfig.safeParse(row.config);
        // A config written outside the API is left alone rather than rewritten as empty.
        if (!parsed.success) continue;
        const sealed = sealAgentSecrets(parsed.data, o.box);
        if (sealed !== parsed.data) result.sealed++;
        let unreadable = false;
        // Secrets just sealed are under the current key: opening them again changes nothing.
        const next = !o.verify
          ? sealed
          : mapSealedSecrets(sealed, (secret) => {
              try {
                return o.box.reseal(secret);
              } catch (err) {
                if (!(err instanceof SecretUnreadableError)) throw err;
                unreadable = true;
                return undefined;
              }
            });
        if (next !== sealed) result.resealed++;
        if (unreadable) result.unreadable.push({ tenant_id: tenantId, agent_id: row.agent_id });
        if (next !== parsed.data) await replaceAgentConfig(db, row.agent_id, next);
      }
    });
  }
  if (result.sealed + result.resealed > 0) {
    o.logger.info({ sealed: result.sealed, resealed: result.resealed }, 'agent secrets sealed');
  }
  if (result.unreadable.length > 0) {
    o.logger.error(
      { count: result.unreadable.length, agents: result.unreadable.slice(0, 50) },
      'stored agent secrets (LLM API keys, webhook secrets) cannot be opened with MAIHIVE_SECRET_KEY or MAIHIVE_SECRET_KEY_PREVIOUS; their agents’ LLM calls or webhook deliveries will fail',
    );
  }
  return result;
}
