import { z } from 'zod';

import { IDENTIFIER_PATTERN } from './isolationContext';

/** What reads show instead of a stored secret (LLM API key, webhook secret). */
export const SECRET_MASK = '***';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048);
const Name = z.string().trim().min(1).max(64);

/** The bot's identity on one platform: how mentions of it are recognised. */
export const AgentAccount = z.strictObject({
  platform: Identifier,
  /** The bot's own account id on that platform (QQ number, Discord user id, maim account). */
  account_id: Identifier,
  nickname: Name.optional(),
  /** Other names people call the bot by; a mention of any of them counts as a mention. */
  aliases: z.array(Name).max(20).default([]),
});
export type AgentAccount = z.infer<typeof AgentAccount>;

/** OpenAI-compatible LLM access of an agent. Every field is optional: tenant config fills the rest. */
export const AgentLlmSettings = z.strictObject({
  /** `local` (built in, offline) or an OpenAI-compatible provider name. */
  provider: z.string().min(1).max(64).optional(),
  base_url: HttpUrl.optional(),
  /** Tried in order; later ones are fallbacks. */
  models: z.array(z.string().min(1).max(128)).min(1).max(10).optional(),
  /** Write-only: reads show `***`. Stored sealed, as `api_key_encrypted` (see `sealAgentSecrets`). */
  api_key: z.string().min(1).max(1024).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  /** Per request, ms. */
  timeout_ms: z.number().int().min(100).max(600_000).optional(),
});

/**
 * A sealed secret as `SecretBox.encrypt` writes it: `v<n>:<iv>:<tag>:<ciphertext>`, base64url. The
 * version prefix lets a later format or key scheme coexist with this one.
 */
const SealedSecret = z.string().regex(/^v\d+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]*$/);

/**
 * LLM access as stored: the API key sealed in `api_key_encrypted`. A plaintext `api_key` is only
 * found in rows written before keys were sealed; `sealStoredAgentKeys` seals those at start-up and
 * readers accept both meanwhile.
 */
const StoredAgentLlmSettings = AgentLlmSettings.extend({ api_key_encrypted: SealedSecret.optional() });

/** A OneBot v11 HTTP API (NapCat's "HTTP服务器") replies are sent through. */
export const OneBotHttpSettings = z.strictObject({
  /** `POST {base_url}/send_group_msg` etc. */
  base_url: HttpUrl,
  /** Sent as `Authorization: Bearer`. Write-only: reads show `***`; stored sealed (`access_token_encrypted`). */
  access_token: z.string().min(1).max(1024).optional(),
});

/** Where replies are pushed (webhook, OneBot HTTP API), besides polling and SSE. */
export const AgentDeliverySettings = z.strictObject({
  webhook_url: HttpUrl.optional(),
  /**
   * HMAC key for webhook signatures. Write-only: reads show `***`. Stored sealed, as
   * `webhook_secret_encrypted` (see `sealAgentSecrets`); the delivery worker opens it to sign.
   */
  webhook_secret: z.string().min(1).max(1024).optional(),
  onebot_http: OneBotHttpSettings.optional(),
});

/** Delivery settings as stored: secrets sealed, plaintext ones only in older rows. */
const StoredAgentDeliverySettings = AgentDeliverySettings.extend({
  webhook_secret_encrypted: SealedSecret.optional(),
  onebot_http: OneBotHttpSettings.extend({ access_token_encrypted: SealedSecret.optional() }).optional(),
});
export type StoredAgentDeliverySettings = z.infer<typeof StoredAgentDeliverySettings>;

/** How the agent's OneBot implementation (NapCat) reaches MaiHive. */
export const AgentOneBotSettings = z.strictObject({
  /**
   * NapCat's HTTP client "token": events POSTed to `/adapters/onebot/v11` must then carry
   * `X-Signature: sha1=<HMAC-SHA1(secret, body)>`. Write-only: reads show `***`; stored sealed.
   */
  secret: z.string().min(1).max(1024).optional(),
});
const StoredAgentOneBotSettings = AgentOneBotSettings.extend({ secret_encrypted: SealedSecret.optional() });

/** Memory settings (config category `memory`; an agent's are stored here, in its config). */
export const AgentMemorySettings = z.strictObject({
  /**
   * Messages kept in short-term memory: the most inbound messages the memory worker reads (and its
   * LLM extractor sees) in one extraction round. Absent = the worker's batch size (200).
   */
  max_short_term: z.number().int().positive().max(100_000).optional(),
  /**
   * Long-term memory items kept: the most memories of the agent (every scope); the memory worker
   * removes the least valuable unlocked ones over it when it stores. Absent = no limit.
   */
  max_long_term: z.number().int().positive().max(10_000_000).optional(),
  /** Memories are extracted from chats and used in replies. Default true. */
  enabled: z.boolean().optional(),
  /** Memories of the agent put into a reply prompt, newest first (0 = none). Default 20. */
  prompt_memories: z.number().int().min(0).max(100).optional(),
  /** Memories the memory worker stores expire this many days later. Absent = kept until deleted. */
  retention_days: z.number().int().min(1).max(3650).optional(),
  /** Inbound messages per automatic chat summary. Default 20. */
  summary_messages: z.number().int().min(2).max(1000).optional(),
});

/** An agent's configuration as stored and returned (secrets masked on the way out). */
export const AgentConfig = z.strictObject({
  accounts: z.array(AgentAccount).max(50).default([]),
  persona: z.string().max(8000).optional(),
  reply_style: z.string().max(2000).optional(),
  llm: StoredAgentLlmSettings.optional(),
  delivery: StoredAgentDeliverySettings.optional(),
  onebot: StoredAgentOneBotSettings.optional(),
  memory: AgentMemorySettings.optional(),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

// The upstream reference's names (API_REFERENCE.zh.md § 智能体管理) are accepted as aliases so its
// example bodies work; they are stored under the names above.
const UpstreamLlmConfig = z.strictObject({
  model: z.string().min(1).max(128).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
});

const ALIASES = [
  ['personality', 'persona'],
  ['response_style', 'reply_style'],
  ['llm_config', 'llm'],
  ['memory_config', 'memory'],
] as const;

/**
 * A config write (`config` of `POST/PUT /agents`, body of `PUT /agents/{id}/config`). Top-level
 * keys given replace the stored ones and `null` removes one; keys not given stay as they are.
 */
export const AgentConfigPatch = z
  .strictObject({
    accounts: z.array(AgentAccount).max(50).nullable().optional(),
    persona: z.string().max(8000).nullable().optional(),
    reply_style: z.string().max(2000).nullable().optional(),
    llm: AgentLlmSettings.nullable().optional(),
    delivery: AgentDeliverySettings.nullable().optional(),
    onebot: AgentOneBotSettings.nullable().optional(),
    memory: AgentMemorySettings.nullable().optional(),
    personality: z.string().max(8000).nullable().optional(),
    response_style: z.string().max(2000).nullable().optional(),
    llm_config: UpstreamLlmConfig.nullable().optional(),
    memory_config: AgentMemorySettings.nullable().optional(),
  })
  .superRefine((patch, ctx) => {
    for (const [alias, name] of ALIASES) {
      if (patch[alias] !== undefined && patch[name] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [alias], message: `give ${name} or ${alias}, not both` });
      }
    }
    const seen = new Set<string>();
    (patch.accounts ?? []).forEach((account, i) => {
      const key = `${account.platform}\u0000${account.account_id}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['accounts', i], message: 'this account is listed twice' });
      }
      seen.add(key);
    });
  });
export type AgentConfigPatch = z.infer<typeof AgentConfigPatch>;

/** A stored config read back; anything unreadable (written outside the API) counts as empty. */
export function storedAgentConfig(raw: unknown): AgentConfig {
  const parsed = AgentConfig.safeParse(raw ?? {});
  return parsed.success ? parsed.data : AgentConfig.parse({});
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function llmOf(patch: AgentConfigPatch): AgentConfigPatch['llm'] {
  if (patch.llm_config === undefined) return patch.llm;
  if (patch.llm_config === null) return null;
  const { model, temperature, max_tokens } = patch.llm_config;
  return withoutUndefined({ models: model === undefined ? undefined : [model], temperature, max_tokens });
}

/**
 * The secrets an agent's config holds: each written in plaintext under `plain` and stored only
 * sealed under `sealed`, in the object at `path` (a plaintext one is found only in rows written
 * before it was sealed). An entry nested in another's object comes after it.
 */
export const AGENT_SECRETS = [
  { path: ['llm'], plain: 'api_key', sealed: 'api_key_encrypted' },
  { path: ['delivery'], plain: 'webhook_secret', sealed: 'webhook_secret_encrypted' },
  { path: ['delivery', 'onebot_http'], plain: 'access_token', sealed: 'access_token_encrypted' },
  { path: ['onebot'], plain: 'secret', sealed: 'secret_encrypted' },
] as const;

type SecretPath = (typeof AGENT_SECRETS)[number]['path'];

function sectionOf(config: object | undefined, path: SecretPath): Record<string, unknown> | undefined {
  let at: unknown = config;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return typeof at === 'object' && at !== null ? (at as Record<string, unknown>) : undefined;
}

/** `config` with the object at `path` replaced (every object on the way copied). */
function withSection<T extends object>(config: T, path: SecretPath, value: Record<string, unknown>): T {
  const [head, ...rest] = path;
  const current = (config as Record<string, unknown>)[head];
  const next =
    rest.length === 0
      ? value
      : withSection((current ?? {}) as Record<string, unknown>, rest as unknown as SecretPath, value);
  return { ...config, [head]: next };
}

/** Seals a secret for storage (`SecretBox` does; the API never opens what it sealed). */
export interface SecretSealer {
  encrypt(plaintext: string): string;
}

/**
 * The config after a write: aliases resolved, `null` keys removed, unchanged secrets kept, and
 * new ones (LLM API key, webhook secret) sealed with `sealer`, so that only their ciphertext is
 * stored.
 */
export function applyAgentConfigPatch(
  stored: AgentConfig,
  patch: AgentConfigPatch,
  sealer: SecretSealer,
): AgentConfig {
  const given = {
    accounts: patch.accounts,
    persona: patch.personality !== undefined ? patch.personality : patch.persona,
    reply_style: patch.response_style !== undefined ? patch.response_style : patch.reply_style,
    llm: llmOf(patch),
    delivery: patch.delivery,
    onebot: patch.onebot,
    memory: patch.memory_config !== undefined ? patch.memory_config : patch.memory,
  };
  const next: Record<string, unknown> = { ...stored };
  for (const [key, value] of Object.entries(given)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  // A secret given as omitted or as the mask keeps the stored one (in whichever form it is
  // stored), so a read config can be written back; a new one replaces both forms.
  let merged = next;
  for (const f of AGENT_SECRETS) {
    // The section as written now (entries nested in another see it with that one's secret settled).
    if (!sectionOf(given, f.path)) continue;
    const section = sectionOf(merged, f.path)!;
    const kept = sectionOf(stored, f.path);
    const replaced = section[f.plain] !== undefined && section[f.plain] !== SECRET_MASK;
    merged = withSection(
      merged,
      f.path,
      withoutUndefined({
        ...section,
        [f.plain]: replaced ? section[f.plain] : kept?.[f.plain],
        [f.sealed]: replaced ? undefined : kept?.[f.sealed],
      }),
    );
  }
  return sealAgentSecrets(AgentConfig.parse(merged), sealer);
}

/**
 * The config with every plaintext secret (a new one, or one stored before secrets were sealed)
 * replaced by its sealed form; the same object when there is none.
 */
export function sealAgentSecrets(config: AgentConfig, sealer: SecretSealer): AgentConfig {
  let next = config;
  for (const f of AGENT_SECRETS) {
    const section = sectionOf(next, f.path);
    const plaintext = section?.[f.plain];
    if (typeof plaintext !== 'string') continue;
    const rest: Record<string, unknown> = { ...section };
    delete rest[f.plain];
    next = withSection(next, f.path, { ...rest, [f.sealed]: sealer.encrypt(plaintext) });
  }
  return next;
}

/**
 * The config with each sealed secret replaced by what `change` returns for it (undefined keeps
 * it); the same object when nothing changed. For re-sealing under a new server key.
 */
export function mapSealedSecrets(
  config: AgentConfig,
  change: (sealed: string) => string | undefined,
): AgentConfig {
  let next = config;
  for (const f of AGENT_SECRETS) {
    const section = sectionOf(next, f.path);
    const sealed = section?.[f.sealed];
    if (typeof sealed !== 'string') continue;
    const changed = change(sealed);
    if (changed !== undefined) next = withSection(next, f.path, { ...section, [f.sealed]: changed });
  }
  return next;
}

/** Whether the config still holds a secret in plaintext (written before secrets were sealed). */
export function hasPlaintextSecrets(config: AgentConfig): boolean {
  return AGENT_SECRETS.some((f) => sectionOf(config, f.path)?.[f.plain] !== undefined);
}

/** The config as reads show it: secrets replaced by `***`, sealed ones included (never the ciphertext). */
export function maskAgentConfig(config: AgentConfig): AgentConfig {
  let masked = config;
  for (const f of AGENT_SECRETS) {
    const section = sectionOf(masked, f.path);
    if (!section) continue;
    const rest: Record<string, unknown> = { ...section };
    delete rest[f.plain];
    delete rest[f.sealed];
    const held = section[f.plain] !== undefined || section[f.sealed] !== undefined;
    masked = withSection(masked, f.path, held ? { ...rest, [f.plain]: SECRET_MASK } : rest);
  }
  return masked;
}
