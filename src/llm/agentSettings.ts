import type { AgentConfig } from '../domain/agentConfig';
import type { SecretBox } from './secretBox';
import { LlmSettings } from './types';

/**
 * An agent's LLM access as every worker resolves it: the built-in `local` provider unless the agent
 * names a remote OpenAI-compatible endpoint. The API key stays sealed (as stored) until the client
 * opens it to build the request. A key still stored in plaintext (a row from before keys were
 * sealed, until the start-up step seals it) is sealed here with the worker's box, so the client
 * sees one form only.
 */
export function agentLlmSettings(config: AgentConfig, secretBox?: SecretBox): LlmSettings {
  const llm = config.llm;
  if (!llm?.provider || llm.provider === 'local' || !llm.base_url)
    return LlmSettings.parse({ provider: 'local' });
  const sealed =
    llm.api_key_encrypted ?? (llm.api_key && secretBox ? secretBox.encrypt(llm.api_key) : undefined);
  return LlmSettings.parse({
    provider: 'openai',
    base_url: llm.base_url,
    models: llm.models ?? [],
    ...(sealed === undefined ? {} : { api_key_encrypted: sealed }),
    ...(llm.temperature === undefined ? {} : { temperature: llm.temperature }),
    ...(llm.max_tokens === undefined ? {} : { max_tokens: llm.max_tokens }),
    ...(llm.timeout_ms === undefined ? {} : { timeout_ms: llm.timeout_ms }),
  });
}
