import type { Database } from '../db/database';
import { getAgent } from '../db/repositories/agents';
import { recordLlmUsage } from '../db/repositories/llmUsage';
import { storedAgentConfig } from '../domain/agentConfig';
import { createIsolationContext } from '../domain/isolationContext';
import { agentLlmSettings } from '../llm/agentSettings';
import type { LlmClient } from '../llm/llmClient';
import type { SecretBox } from '../llm/secretBox';
import type { PluginHostDeps } from '../plugins/pluginApiHost';

/**
 * `llm.complete` of the PluginAPI in a worker: the agent's own LLM settings, metered and limited
 * like every other call of the tenant (quotas, concurrency), its usage recorded as `other`.
 */
export function pluginCompletion(
  db: Database,
  llm: LlmClient,
  secretBox?: SecretBox,
): PluginHostDeps['complete'] {
  return async ({ tenantId, agentId }, prompt) => {
    const ctx = createIsolationContext({ tenantId, agentId });
    const agent = await db.withTenant(ctx, (tx) => getAgent(tx, agentId));
    const result = await llm.complete({
      tenantId,
      agentId,
      requestType: 'other',
      messages: [{ role: 'user', content: prompt }],
      settings: agentLlmSettings(storedAgentConfig(agent?.config), secretBox),
    });
    await db.withTenant(ctx, async (tx) => {
      for (const u of result.usage) await recordLlmUsage(tx, u);
    });
    return result.content;
  };
}
