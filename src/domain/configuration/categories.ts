import { z } from 'zod';

import {
  AGENT_SECRETS,
  AgentConfig,
  AgentDeliverySettings,
  AgentLlmSettings,
  AgentMemorySettings,
  applyAgentConfigPatch,
  maskAgentConfig,
  type SecretSealer,
} from '../agentConfig';
import { HEARTFLOW_CONFIG_DEFAULTS, HEARTFLOW_FIELDS } from '../heartflow/config';

/**
 * The configuration categories (API.md § Configuration): each a set of keys with a zod schema,
 * a documented default and unit. `llm`, `delivery` and `memory` are the very schemas of an agent's
 * config sections (`agentConfig.ts`), so that an agent's values have one shape and one home.
 */

export const CONFIG_CATEGORIES = [
  'llm',
  'heartflow',
  'memory',
  'emoji',
  'delivery',
  'content_policy',
] as const;
export type ConfigCategory = (typeof CONFIG_CATEGORIES)[number];

/** Least to most specific: a value set at a later scope wins over an earlier one. */
export const CONFIG_SCOPES = ['tenant', 'agent', 'platform', 'chat'] as const;
export type ConfigScope = (typeof CONFIG_SCOPES)[number];

/** The emoji feature (the emoji packs' selection and the planner's emoji answers). */
const EMOJI_FIELDS = {
  /** Emoji may be sent at all (auto and manual). Default true. */
  enabled: z.boolean(),
  /** Least time between two automatic emoji in one chat, seconds. Default 60. */
  cooldown_seconds: z.number().int().min(0).max(86_400),
  /** Most automatic emoji per chat per hour. Default 20. */
  max_per_hour: z.number().int().min(0).max(3600),
};

const CONTENT_POLICY_FIELDS = {
  /** Rejects markup and SQL-injection shapes in sent messages (400 `content_policy`). Default true. */
  enabled: z.boolean(),
};

/** Each category's keys, each optional (a scope sets some of them). */
export const CATEGORY_FIELDS = {
  llm: AgentLlmSettings.shape,
  heartflow: HEARTFLOW_FIELDS,
  memory: AgentMemorySettings.shape,
  emoji: EMOJI_FIELDS,
  delivery: AgentDeliverySettings.shape,
  content_policy: CONTENT_POLICY_FIELDS,
} as const;

/** The value a key has when no scope sets it; keys without a default are absent then. */
export const CONFIG_DEFAULTS: Record<ConfigCategory, Record<string, unknown>> = {
  llm: { provider: 'local' },
  heartflow: { ...HEARTFLOW_CONFIG_DEFAULTS },
  memory: { enabled: true, prompt_memories: 20, summary_messages: 20 },
  emoji: { enabled: true, cooldown_seconds: 60, max_per_hour: 20 },
  delivery: {},
  content_policy: { enabled: true },
};

/** Categories whose values at agent scope live in the agent's config (`agents.config.<category>`). */
export const AGENT_CONFIG_CATEGORIES: ReadonlySet<ConfigCategory> = new Set(['llm', 'delivery', 'memory']);

function unwrapOptional(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema;
}

/**
 * Body `config` of `PUT /config` for a category: keys given replace the scope's stored ones, `null`
 * removes one (the scope then inherits it), keys not given stay; `"***"` keeps a stored secret.
 */
export function configPatchSchema(category: ConfigCategory) {
  const shape = Object.fromEntries(
    Object.entries(CATEGORY_FIELDS[category]).map(([k, v]) => [
      k,
      unwrapOptional(v as z.ZodType)
        .nullable()
        .optional(),
    ]),
  );
  return z.strictObject(shape);
}

/**
 * One key's schema, to check values read back from storage: for an agent-config category the
 * stored form (a nested secret sealed, as in `delivery.onebot_http.access_token_encrypted`).
 */
export function fieldSchema(category: ConfigCategory, key: string): z.ZodType | undefined {
  const section: z.ZodType | undefined = AGENT_CONFIG_CATEGORIES.has(category)
    ? unwrapOptional(AgentConfig.shape[category as 'llm' | 'delivery' | 'memory'])
    : undefined;
  const stored =
    section instanceof z.ZodObject ? (section.shape as Record<string, z.ZodType>)[key] : undefined;
  const field = stored ?? (CATEGORY_FIELDS[category] as Record<string, z.ZodType>)[key];
  return field && unwrapOptional(field);
}

/** Secret keys of a category, as `AGENT_SECRETS` lists them (path inside the category). */
export function secretsOf(category: ConfigCategory) {
  return AGENT_SECRETS.filter((s) => s.path[0] === category).map((s) => ({ ...s, path: s.path.slice(1) }));
}

/** Whether a stored key is the sealed form of a secret (`api_key_encrypted`). */
export function isSealedKey(category: ConfigCategory, key: string): boolean {
  return secretsOf(category).some((s) => s.path.length === 0 && s.sealed === key);
}

/** The top-level key a stored key counts as (the sealed form of a secret counts as the secret). */
export function publicKeyOf(category: ConfigCategory, key: string): string {
  return secretsOf(category).find((s) => s.path.length === 0 && s.sealed === key)?.plain ?? key;
}

/** Values as reads show them: every secret (sealed or not) as `***`, never the ciphertext. */
export function maskConfigValues(
  category: ConfigCategory,
  values: Record<string, unknown>,
): Record<string, unknown> {
  if (!AGENT_CONFIG_CATEGORIES.has(category)) return values;
  const masked = maskAgentConfig({ accounts: [], [category]: values });
  return (masked as Record<string, unknown>)[category] as Record<string, unknown>;
}

/**
 * A scope's stored values after a write: keys given replace, `null` removes, a secret given as
 * `***` (or not given) keeps the stored one, new secrets are sealed with `sealer`. Throws a
 * `ZodError` for an invalid result.
 */
export function applyConfigPatch(
  category: ConfigCategory,
  stored: Record<string, unknown>,
  patch: Record<string, unknown>,
  sealer: SecretSealer,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...stored };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete merged[key];
      for (const s of secretsOf(category))
        if (s.path.length === 0 && s.plain === key) delete merged[s.sealed];
    } else if (value !== undefined) merged[key] = value;
  }
  if (!AGENT_CONFIG_CATEGORIES.has(category)) return configPatchSchema(category).parse(merged);
  // The agent-config sections share the agent's secret handling: `***` keeps, new ones are sealed.
  const withoutSealed = Object.fromEntries(Object.entries(merged).filter(([k]) => !isSealedKey(category, k)));
  const next = applyAgentConfigPatch(
    AgentConfig.parse({ [category]: stored }),
    { [category]: withoutSealed },
    sealer,
  ) as Record<string, unknown>;
  const section = { ...((next[category] as Record<string, unknown> | undefined) ?? {}) };
  for (const s of secretsOf(category)) {
    if (s.path.length === 0 && patch[s.plain] === null) {
      delete section[s.plain];
      delete section[s.sealed];
    }
  }
  return section;
}

/** What each key means, with its unit (the JSON Schema's `description`). */
const KEY_DOCS: Record<ConfigCategory, Record<string, string>> = {
  llm: {
    provider: '`local` (built in, offline) or the name of an OpenAI-compatible provider',
    base_url: 'OpenAI-compatible endpoint (http/https URL)',
    models: 'models tried in order; later ones are fallbacks',
    api_key: 'secret, write-only (reads show "***"); stored sealed',
    temperature: 'sampling temperature, 0..2',
    max_tokens: 'most completion tokens per reply',
    timeout_ms: 'per request, milliseconds',
  },
  heartflow: {
    talk_value: 'how talkative the bot is unprompted, 0 (never) to 1',
    talk_value_rules:
      'talk values by daily time window (HH:MM, local time) and chat type; the first match wins',
    mentioned_bot_reply: 'a mention of the bot (or a private message) is always answered',
    emotion_sensitivity: 'how strongly emotional messages move the bot (emoji answers), 0..1',
    memory_strength: 'how much retrieved memory goes into a reply prompt, 0..1',
    response_style: 'reply style hint for the prompt',
    enable_auto_emoji: 'the planner may answer low-effort chatter with an emoji',
    quiet_hours: 'daily windows (HH:MM, local time) in which the bot speaks only when mentioned',
    max_continuous_replies:
      'batches the bot may answer in a row before it lets the others speak once (mentions are still answered); 0 = no limit, count',
    timezone: 'IANA time zone of talk_value_rules and quiet_hours',
  },
  memory: {
    max_short_term:
      'messages kept in short-term memory: most inbound messages the memory worker reads (and its LLM extractor sees) per extraction round; unset = 200, count',
    max_long_term:
      'long-term memory items kept: most memories of the agent (all scopes, locked ones counted); when the memory worker stores more, the least valuable unlocked ones (lowest importance, then least recently accessed, then oldest) are removed in the same transaction; the value of the chat whose job stores applies; unset = no cap, count',
    enabled:
      'memories are extracted from chats (the memory worker skips a chat where it is off) and used in replies',
    prompt_memories: 'memories put into a reply prompt, count',
    retention_days:
      'memories the memory worker stores (facts, preferences, summaries) expire after this many days; unset = kept',
    summary_messages: 'inbound messages per automatic chat summary, count',
  },
  emoji: {
    enabled: 'emoji may be sent at all',
    cooldown_seconds: 'least time between two automatic emoji in one chat, seconds',
    max_per_hour: 'most automatic emoji per chat per hour, count',
  },
  delivery: {
    webhook_url: 'replies are POSTed here (http/https URL); any scope, e.g. one chat to its own receiver',
    webhook_secret:
      'HMAC key of webhook signatures; secret, write-only, stored sealed. Signs only deliveries to the webhook_url of the same scope (a URL from another scope goes unsigned by it)',
    onebot_http:
      'OneBot v11 HTTP API QQ replies are sent through: {base_url, access_token (secret)}, taken whole from one scope',
  },
  content_policy: {
    enabled: 'reject markup and SQL-injection shapes in sent messages (400 content_policy)',
  },
};

/** `GET /config/schema`: each category as JSON Schema, with its defaults and documentation. */
export function configJsonSchema(): Record<ConfigCategory, unknown> {
  return Object.fromEntries(
    CONFIG_CATEGORIES.map((category) => {
      const shape = Object.fromEntries(
        Object.entries(CATEGORY_FIELDS[category]).map(([k, v]) => {
          const field = unwrapOptional(v as z.ZodType).describe(KEY_DOCS[category][k] ?? k);
          const fallback = CONFIG_DEFAULTS[category][k];
          return [k, (fallback === undefined ? field : field.default(fallback as never)).optional()];
        }),
      );
      return [category, z.toJSONSchema(z.strictObject(shape), { io: 'input', unrepresentable: 'any' })];
    }),
  ) as Record<ConfigCategory, unknown>;
}
