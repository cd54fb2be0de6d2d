import { z } from 'zod';

import type { LlmUsageRecord } from '../db/repositories/llmUsage';
import { MaiHiveError } from '../errors';

/** One chat message in OpenAI's wire shape. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What a call is for; recorded in `llm_usage.request_type` and used for statistics. */
export type LlmRequestType = 'replyer' | 'planner' | 'memory' | 'emoji' | 'summary' | 'other';

/** A uniform random source in [0, 1); injected so tests and the heartflow can pin it. */
export type Rng = () => number;

const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048);

/**
 * The LLM access of one tenant/agent, resolved (agent over tenant over defaults) and stored with
 * the API key encrypted (see `secretBox.ts`).
 */
export const LlmSettings = z
  .strictObject({
    /** `local` (built in, offline, rule based) or `openai` (any OpenAI-compatible endpoint). Default `local`. */
    provider: z.enum(['local', 'openai']).default('local'),
    /** Endpoint root, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended. Required for `openai`. */
    base_url: HttpUrl.optional(),
    /** Models in order of preference; later ones are fallbacks. Required (≥ 1) for `openai`; `local` ignores it. */
    models: z.array(z.string().min(1).max(128)).max(10).default([]),
    /** `v1:<iv>:<tag>:<ciphertext>` from `SecretBox.encrypt`; absent = no Authorization header. */
    api_key_encrypted: z
      .string()
      .regex(/^v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]*$/, 'must be a v1 sealed secret')
      .optional(),
    /** Sampling temperature, 0..2. Default 0.7. */
    temperature: z.number().min(0).max(2).default(0.7),
    /** Completion length limit, tokens. Default 512. */
    max_tokens: z.number().int().min(1).max(1_000_000).default(512),
    /** Per HTTP call, ms (connect to last byte). Default 20000. */
    timeout_ms: z.number().int().min(100).max(600_000).default(20_000),
    /** Retries of one model on a transient failure, before failing over to the next. Default 2. */
    max_retries: z.number().int().min(0).max(10).default(2),
    /** Price per 1000 tokens, in the tenant's billing currency; absent = cost 0. */
    cost_per_1k_tokens: z
      .strictObject({ prompt: z.number().min(0), completion: z.number().min(0) })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.provider !== 'openai') return;
    if (s.base_url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['base_url'], message: 'the openai provider needs a base_url' });
    }
    if (s.models.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['models'],
        message: 'the openai provider needs at least one model',
      });
    }
  });
export type LlmSettings = z.output<typeof LlmSettings>;
export type LlmSettingsInput = z.input<typeof LlmSettings>;

/** One call to one model, as a provider sees it. */
export interface ProviderRequest {
  model: string;
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  timeoutMs: number;
  requestType: LlmRequestType;
  /** Endpoint root (OpenAI-compatible providers). */
  baseUrl?: string | undefined;
  /** Decrypted API key; never logged. */
  apiKey?: string | undefined;
  /** Facts the caller already has; the local provider uses them, remote ones ignore them. */
  hints?: LlmHints | undefined;
}

/** Structured context for the local provider (the replyer knows these without parsing its prompt). */
export interface LlmHints {
  /** The bot's name in this chat. */
  personaName?: string | undefined;
  /** Retrieved memories, most relevant first. */
  memories?: readonly string[] | undefined;
}

export interface ProviderResult {
  content: string;
  promptTokens: number;
  completionTokens: number;
}

/** A backend that answers chat completions. Throws `LlmError` on failure. */
export interface LlmProvider {
  /** Recorded in `llm_usage.provider`. */
  readonly name: string;
  complete(request: ProviderRequest): Promise<ProviderResult>;
}

/**
 * Why a call failed. The table below decides what happens next; it is the only place that does.
 * - `timeout`: no complete answer within `timeout_ms`.
 * - `network`: connection refused/reset, DNS.
 * - `rate_limited`: HTTP 429.
 * - `server_error`: HTTP 5xx.
 * - `bad_response`: 2xx whose body is not a chat completion (malformed JSON, no choices).
 * - `model_unavailable`: HTTP 404 (the endpoint does not serve this model).
 * - `rejected`: any other 4xx (bad request, bad key, forbidden) or unusable settings.
 */
export type LlmFailureKind =
  'timeout' | 'network' | 'rate_limited' | 'server_error' | 'bad_response' | 'model_unavailable' | 'rejected';

export const FAILURE_POLICY: Readonly<
  Record<LlmFailureKind, { retrySameModel: boolean; tryNextModel: boolean; penalise: boolean }>
> = {
  timeout: { retrySameModel: true, tryNextModel: true, penalise: true },
  network: { retrySameModel: true, tryNextModel: true, penalise: true },
  rate_limited: { retrySameModel: true, tryNextModel: true, penalise: true },
  server_error: { retrySameModel: true, tryNextModel: true, penalise: true },
  bad_response: { retrySameModel: false, tryNextModel: true, penalise: true },
  model_unavailable: { retrySameModel: false, tryNextModel: true, penalise: true },
  // The request itself (or its key) is wrong: another model or a retry would fail the same way.
  rejected: { retrySameModel: false, tryNextModel: false, penalise: false },
};

/** One failed HTTP call, as kept in `LlmError.details.attempts`. */
export interface LlmAttemptFailure {
  model: string;
  kind: LlmFailureKind;
  httpStatus?: number | undefined;
  message: string;
}

/**
 * An LLM call failed. Providers throw it per attempt; `LlmClient.complete` throws it once every
 * model and retry is spent. `retryable` says whether the job may succeed later (transient cause).
 */
export class LlmError extends MaiHiveError {
  readonly code = 'LLM_ERROR';
  readonly status = 502;
  /** Whether trying again later may succeed (see `FAILURE_POLICY`). */
  readonly retryable: boolean;
  readonly httpStatus: number | undefined;
  /** Server-requested wait (Retry-After), ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly kind: LlmFailureKind,
    message: string,
    options: {
      httpStatus?: number | undefined;
      /** Server-requested wait (Retry-After), ms. */
      retryAfterMs?: number | undefined;
      details?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { details: options.details, cause: options.cause });
    this.retryable = FAILURE_POLICY[kind].retrySameModel;
    this.httpStatus = options.httpStatus;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The failed attempts of a whole `complete` call (empty for a single attempt's error). */
  get attempts(): LlmAttemptFailure[] {
    return (this.details?.attempts as LlmAttemptFailure[] | undefined) ?? [];
  }

  /** The `llm_usage` rows of those attempts (written already if the call had a `db`). */
  get usage(): LlmUsageRecord[] {
    return (this.details?.usage as LlmUsageRecord[] | undefined) ?? [];
  }
}

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/g;

/**
 * Rough token count for when a provider reports none: a CJK character is about one token, other
 * text about four characters per token (OpenAI's rule of thumb), plus a few tokens of framing.
 */
export function estimateTokens(text: string): number {
  const cjk = text.match(CJK)?.length ?? 0;
  const rest = text.length - cjk;
  return cjk + Math.ceil(rest / 4);
}

/** Prompt tokens of a message list, estimated: content plus ~4 tokens of framing per message. */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + 4 + estimateTokens(m.content), 3);
}
