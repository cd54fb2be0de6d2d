import type { Database } from '../db/database';
import { agentsWithLlmKeysForUpdate, replaceAgentConfig } from '../db/repositories/agents';
import { allTenantIds } from '../db/repositories/tenants';
import { AgentConfig, sealAgentSecrets } from '../domain/agentConfig';
import { createIsolationContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import { type SecretBox, SecretUnreadableError } from './secretBox';

export interface SealAgentKeysOptions {
  db: Database;
  box: SecretBox;
  logger: Logger;
  /**
   * Also open every sealed key: re-seal those sealed under a previous server key (rotation) and
   * report those no configured key opens. Workers do (they are the ones that must open them).
   */
  verify: boolean;
  /** Stops the pass between tenants (shutdown); what is done stays done. */
  signal?: AbortSignal;
}

export interface SealAgentKeysResult {
  /** Plaintext keys (stored before keys were sealed) now sealed. */
  sealed: number;
  /** Keys sealed under a previous server key now sealed under the current one. */
  resealed: number;
  /** Agents whose sealed key no configured server key opens. */
  unreadable: { tenant_id: string; agent_id: string }[];
}

/**
 * The start-up step that keeps agents' LLM API keys encrypted at rest: every key still stored in
 * plaintext (rows written before keys were sealed) is sealed under the current server key, and with
 * `verify` every sealed key is opened once, re-sealed if a previous key opened it, and reported
 * loudly if none does. One short unit of work per tenant; running it again (or in several
 * processes at once) changes nothing more, as the rows are locked and re-read.
 */
export async function sealStoredAgentKeys(o: SealAgentKeysOptions): Promise<SealAgentKeysResult> {
  const result: SealAgentKeysResult = { sealed: 0, resealed: 0, unreadable: [] };
  const tenantIds = await o.db.withPlatform((db) => allTenantIds(db));
  for (const tenantId of tenantIds) {
    if (o.signal?.aborted) break;
    await o.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
      for (const row of await agentsWithLlmKeysForUpdate(db, { plaintextOnly: !o.verify })) {
        const parsed = AgentConfig.safeParse(row.config);
        // A config written outside the API is left alone rather than rewritten as empty.
        if (!parsed.success) continue;
        let next = sealAgentSecrets(parsed.data, o.box);
        if (next !== parsed.data) result.sealed++;
        else if (o.verify && next.llm?.api_key_encrypted !== undefined) {
          try {
            const resealed = o.box.reseal(next.llm.api_key_encrypted);
            if (resealed === undefined) continue;
            next = { ...next, llm: { ...next.llm, api_key_encrypted: resealed } };
            result.resealed++;
          } catch (err) {
            if (!(err instanceof SecretUnreadableError)) throw err;
            result.unreadable.push({ tenant_id: tenantId, agent_id: row.agent_id });
            continue;
          }
        }
        if (next !== parsed.data) await replaceAgentConfig(db, row.agent_id, next);
      }
    });
  }
  if (result.sealed + result.resealed > 0) {
    o.logger.info({ sealed: result.sealed, resealed: result.resealed }, 'agent LLM API keys sealed');
  }
  if (result.unreadable.length > 0) {
    o.logger.error(
      { count: result.unreadable.length, agents: result.unreadable.slice(0, 50) },
      'stored LLM API keys cannot be opened with MAIHIVE_SECRET_KEY or MAIHIVE_SECRET_KEY_PREVIOUS; their agents’ LLM calls will fail',
    );
  }
  return result;
}
