import { z } from 'zod';

import { IDENTIFIER_PATTERN } from './isolationContext';

/** Per-tenant scheduling knobs (enforced by the queues/workers). */
export const SchedulingSettings = z.strictObject({
  /** Share of worker capacity relative to other backlogged tenants. Default 1. */
  weight: z.number().positive().max(1000).default(1),
  /**
   * Most heartflow jobs of this tenant running at once across all workers. Default 10: about twice
   * the tenant's LLM call slots; beyond that its jobs mostly wait while holding worker slots, and
   * a flood that took every slot would make other tenants' jobs share the CPU with it.
   */
  max_concurrency: z.number().int().positive().max(10_000).default(10),
  /** At most `max` jobs started per `duration_ms`. */
  rate_limit: z
    .strictObject({ max: z.number().int().positive(), duration_ms: z.number().int().positive() })
    .optional(),
  /** Sends are refused with 429 while this many messages wait. Default 10000. */
  max_queue_size: z.number().int().positive().default(10_000),
  /**
   * Requests of this tenant in progress at once in each API process (`?wait` ones included);
   * more are refused with 429 at once. Default 128.
   */
  ingress_max_in_flight: z.number().int().positive().max(100_000).default(128),
});

/** `settings` of `POST/PUT /tenants`, with the defaults a tenant gets when it says nothing. */
export const TenantSettings = z.strictObject({
  /** Agents the tenant may have (the `default` agent counts). Default 10. */
  max_agents: z.number().int().positive().default(10),
  /** Chat streams the tenant may have. Default 1000. */
  max_chat_streams: z.number().int().positive().default(1000),
  /** Platforms messages may come from; empty = any. */
  allowed_platforms: z.array(z.string().regex(IDENTIFIER_PATTERN)).default([]),
  quotas: z
    .strictObject({
      /** LLM requests per UTC day; absent = unlimited. */
      daily_llm_requests: z.number().int().positive().optional(),
      /** LLM tokens per UTC month; absent = unlimited. */
      monthly_tokens: z.number().int().positive().optional(),
      /** Messages accepted per UTC day; absent = unlimited. */
      daily_messages: z.number().int().positive().optional(),
    })
    .default({}),
  /** Ingress rate limit: requests per second for the whole tenant (token bucket). Default 200. */
  rate_limit_per_second: z.number().positive().default(200),
  /** Ingress rate limit per credential, requests per second. Default 100. */
  credential_rate_limit_per_second: z.number().positive().default(100),
  scheduling: SchedulingSettings.default(SchedulingSettings.parse({})),
  /**
   * The content policy (config category `content_policy`) until the configuration API exists:
   * `enabled` (default true) rejects markup and SQL-injection shapes in sent messages.
   */
  content_policy: z.strictObject({ enabled: z.boolean().default(true) }).default({ enabled: true }),
});

export type TenantSettings = z.infer<typeof TenantSettings>;

/**
 * Settings as stored (possibly older or partial) with every default filled in, parsed once per
 * stored object: callers holding the same frozen object (a cached tenant meta) pay the parse once.
 */
const parsedSettings = new WeakMap<object, TenantSettings>();

export function effectiveSettingsOf(stored: object): TenantSettings {
  let settings = parsedSettings.get(stored);
  if (!settings) {
    settings = effectiveSettings(stored);
    parsedSettings.set(stored, settings);
  }
  return settings;
}

/** Settings as stored (possibly older or partial) with every default filled in. */
export function effectiveSettings(stored: unknown): TenantSettings {
  const parsed = TenantSettings.safeParse(stored ?? {});
  return parsed.success ? parsed.data : TenantSettings.parse({});
}
