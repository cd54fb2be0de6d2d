import type { AgentConfig } from '../domain/agentConfig';
import type { SecretBox } from './secretBox';
import { LlmSettings } from './types';

/**
 * An agent's LLM access as every worker resolves it: the built-in `local` provider unless the agent
 * names a remote OpenAI-compatible endpoint. The agent's API key is sealed with the server's
 * secret box for the client, which opens it only to build the request.
 */
export function agentLlmSettings(config: AgentConfig, secretBox?: SecretBox): LlmSettings {
  const llm = config.llm;
  if (!llm?.provider || llm.provider === 'local' || !llm.base_url)
    return LlmSettings.parse({ provider: 'local' });
  return LlmSettings.parse({
    provider: 'openai',
    base_url: llm.base_url,
    models: llm.models ?? [],
    ...(llm.api_key && secretBox ? { api_key_encrypted: secretBox.encrypt(llm.api_key) } : {}),
    ...(llm.temperature === undefined ? {} : { temperature: llm.temperature }),
    ...(llm.max_tokens === undefined ? {} : { max_tokens: llm.max_tokens }),
    ...(llm.timeout_ms === undefined ? {} : { timeout_ms: llm.timeout_ms }),
  });
}
