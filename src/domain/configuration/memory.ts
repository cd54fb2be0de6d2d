import type { ResolvedCategory } from './precedence';

/** What the memory worker reads of a chat's effective `memory` category. */
export interface MemoryWorkerSettings {
  /** Extraction and summaries run at all. */
  enabled: boolean;
  /** Stored memories expire this long after they are stored, ms; undefined = kept. */
  retentionMs: number | undefined;
  /** Inbound messages per summary, when a scope sets it (else the worker's default applies). */
  summaryMessages: number | undefined;
  /**
   * `memory.max_short_term`: most inbound messages the extraction reads (and the LLM extractor
   * sees) in one round, when a scope sets it; undefined = the worker's batch size.
   */
  maxShortTerm: number | undefined;
  /** `memory.max_long_term`: most memories the agent keeps; undefined = no cap. */
  maxLongTerm: number | undefined;
}

const DAY_MS = 86_400_000;

/** The memory worker's settings from a chat's effective `memory` values. Pure. */
export function memoryWorkerSettingsOf(resolved: ResolvedCategory): MemoryWorkerSettings {
  const v = resolved.values;
  return {
    enabled: v.enabled !== false,
    retentionMs: typeof v.retention_days === 'number' ? v.retention_days * DAY_MS : undefined,
    summaryMessages:
      resolved.sources.summary_messages !== 'default' && typeof v.summary_messages === 'number'
        ? v.summary_messages
        : undefined,
    maxShortTerm: typeof v.max_short_term === 'number' ? v.max_short_term : undefined,
    maxLongTerm: typeof v.max_long_term === 'number' ? v.max_long_term : undefined,
  };
}
