import { performance } from 'node:perf_hooks';

import type { TenantDb } from '../db/database';
import { type LlmUsageRecord, recordLlmUsage } from '../db/repositories/llmUsage';
import { type Clock, systemClock } from '../domain/clock';
import { IsolationViolationError } from '../errors';
import type { Logger } from '../logger';
import { type LlmConcurrencyGuard, LlmConcurrencyTimeoutError, type LlmSlot } from './llmConcurrency';
import type { LlmQuotaGuard, LlmQuotaTicket } from './llmQuota';
import { LocalProvider } from './localProvider';
import { OpenAiClient } from './openaiClient';
import { costOf, type LlmPriceTable, priceFor } from './prices';
import type { SecretBox } from './secretBox';
import {
  type ChatMessage,
  FAILURE_POLICY,
  type LlmAttemptFailure,
  LlmError,
  type LlmHints,
  type LlmProvider,
  type LlmRequestType,
  type LlmSettings,
  type ProviderResult,
  type Rng,
} from './types';

/** Model name recorded for the local provider (which ignores `models`). */
export const LOCAL_MODEL = 'maihive-local';

/** Longest error text stored in `llm_usage.error`, characters. */
const MAX_USAGE_ERROR = 500;
/** Decayed penalties below this count as none (so old failures stop reordering models). */
const PENALTY_FLOOR = 0.1;
/** Penalty entries kept before forgotten ones are pruned. */
const PENALTY_PRUNE_AT = 10_000;

/** One metered HTTP call, as `LlmClientOptions.onCall` hears of it. */
export type LlmCallObservation = { tenantId: string } & Omit<
  LlmUsageRecord,
  'agentId' | 'platform' | 'chatStreamId' | 'messageId'
>;

export interface LlmClientOptions {
  logger: Logger;
  /** Time source for penalty decay. Default the system clock. */
  clock?: Clock;
  /** Waits between retries, ms. Default a timer; tests pass a recorder. */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). Default `Math.random`. */
  rng?: Rng;
  /** Opens `api_key_encrypted`. Without it, settings carrying a key fail with `LlmError('rejected')`. */
  secretBox?: SecretBox;
  /**
   * Calls of one tenant in flight at once in this process (more wait, FIFO). Default
   * `concurrency.maxPerTenant` when a shared guard is given, else 4.
   */
  maxConcurrentPerTenant?: number;
  /**
   * The tenant's LLM call slots shared by all processes (`RedisLlmConcurrency`): each HTTP call to
   * a remote provider holds one. Default none: only the in-process limit applies.
   */
  concurrency?: LlmConcurrencyGuard;
  /**
   * Longest wait for a shared slot before one HTTP call, ms; then the call fails with
   * `LlmConcurrencyTimeoutError` (no request made). Default the settings' `timeout_ms`.
   */
  slotWaitMs?: number;
  /**
   * Tenant LLM quotas: each `complete` reserves before its first HTTP call (a refusal makes none)
   * and books its `llm_usage` rows afterwards, failed calls included. Default none (unmetered).
   */
  quota?: LlmQuotaGuard;
  /** Providers by settings `provider`. Default the built-in `LocalProvider` and `OpenAiClient`. */
  providers?: Partial<Record<LlmSettings['provider'], LlmProvider>>;
  /** First retry's backoff ceiling, ms; doubles per retry, with equal jitter. Default 500. */
  backoffBaseMs?: number;
  /** Largest backoff, ms. Default 8000. */
  backoffMaxMs?: number;
  /** Longest `Retry-After` waited for, ms; a longer one fails over to the next model instead. Default 30000. */
  maxRetryAfterMs?: number;
  /** Half-life of a model's failure penalty, ms. Default 60000. */
  penaltyHalfLifeMs?: number;
  /**
   * Whose failures reorder models: `tenant` (default; one tenant's 429s on its own key do not
   * demote the model for others) or `endpoint` (shared per base_url and model).
   */
  penaltyScope?: 'tenant' | 'endpoint';
  /** The installation's per-model prices (`LLM_PRICES`); an agent's `cost_per_1k_tokens` wins. Default none. */
  prices?: LlmPriceTable;
  /** Told of every HTTP call as it is metered (metrics); must not throw. */
  onCall?: (call: LlmCallObservation) => void;
}

export interface LlmCallRequest {
  tenantId: string;
  agentId: string;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
  messageId?: string | undefined;
  requestType: LlmRequestType;
  messages: ChatMessage[];
  /** Resolved settings (`LlmSettings.parse`d). */
  settings: LlmSettings;
  /** Persona name and memories for the local provider. */
  hints?: LlmHints | undefined;
  /**
   * The caller's tenant unit of work: one `llm_usage` row per HTTP call is written in it. Without
   * it nothing is written; the rows are returned in `usage` (and `LlmError.usage`). A unit of work
   * that rolls back (say, because this call's `LlmError` escapes it) takes the rows with it: catch
   * inside it, or record the returned rows in a short unit of work afterwards, which also avoids
   * holding a transaction open across slow HTTP calls.
   */
  db?: TenantDb | undefined;
}

export interface LlmCallResult {
  content: string;
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  /** The successful call's latency, ms. */
  latencyMs: number;
  /** The successful call's cost (see `cost_per_1k_tokens`). */
  cost: number;
  /** HTTP calls made, including failed ones. */
  attempts: number;
  /** One row per HTTP call, as written (or to be written) to `llm_usage`. */
  usage: LlmUsageRecord[];
}

/**
 * A FIFO counting semaphore per tenant, in this process; idle tenants hold no entry. Kept next to
 * the shared `LlmConcurrencyGuard` rather than replaced by it: sized like the shared limit, it lets
 * no more of a process's calls poll Redis for a slot than could ever get one, serves them in
 * order (the shared slots are polled, not queued), and still bounds calls where no shared guard
 * applies (the local provider, clients built without Redis).
 */
class TenantLimiter {
  private readonly slots = new Map<string, { active: number; waiting: (() => void)[] }>();

  constructor(private readonly max: number) {}

  async acquire(tenantId: string): Promise<() => void> {
    let slot = this.slots.get(tenantId);
    if (!slot) {
      slot = { active: 0, waiting: [] };
      this.slots.set(tenantId, slot);
    }
    const s = slot;
    if (s.active < this.max) s.active++;
    // The releaser hands its slot straight to the next waiter, so `active` never dips and rises.
    else await new Promise<void>((resolve) => s.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = s.waiting.shift();
      if (next) next();
      else if (--s.active === 0) this.slots.delete(tenantId);
    };
  }
}

/** Failure penalties per model, decaying exponentially, so a model that failed lately is tried later. */
class ModelPenalties {
  private readonly entries = new Map<string, { score: number; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly halfLifeMs: number,
  ) {}

  private score(key: string, now: number): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    const score = e.score * 0.5 ** (Math.max(0, now - e.at) / this.halfLifeMs);
    return score < PENALTY_FLOOR ? 0 : score;
  }

  fail(key: string): void {
    const now = this.clock.now();
    if (this.entries.size >= PENALTY_PRUNE_AT) {
      for (const k of [...this.entries.keys()]) if (this.score(k, now) === 0) this.entries.delete(k);
    }
    this.entries.set(key, { score: this.score(key, now) + 1, at: now });
  }

  succeed(key: string): void {
    this.entries.delete(key);
  }

  /** Least penalised first; equal penalties keep the configured order. */
  order<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
    const now = this.clock.now();
    return items
      .map((item, index) => ({ item, index, score: this.score(keyOf(item), now) }))
      .sort((a, b) => a.score - b.score || a.index - b.index)
      .map((x) => x.item);
  }
}

function asLlmError(err: unknown): LlmError {
  if (err instanceof LlmError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LlmError('server_error', `provider failed: ${message}`, { cause: err });
}

/** What every attempt of one `complete` call shares. */
interface CallState {
  req: LlmCallRequest;
  provider: LlmProvider;
  remote: boolean;
  apiKey: string | undefined;
  /** Failed attempts so far, for the final error. */
  failures: LlmAttemptFailure[];
  /** One row per HTTP call, as they happen. */
  usage: LlmUsageRecord[];
}

type AttemptOutcome =
  { ok: true; result: ProviderResult; latencyMs: number } | { ok: false; error: LlmError; latencyMs: number };

/**
 * The one way MaiHive calls a language model. Per call: quota hooks, the tenant's slot in this
 * process, then each model of `settings.models` (least penalised first) with up to `max_retries`
 * retries on transient failures (exponential backoff with jitter, or the server's Retry-After),
 * failing over to the next model per `FAILURE_POLICY`. Every HTTP call to a remote provider also
 * holds one of the tenant's shared slots (`concurrency`), taken before it and given back after it
 * (not across the backoff between retries). Every HTTP call is one `llm_usage` row.
 */
export class LlmClient {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly rng: Rng;
  private readonly secretBox: SecretBox | undefined;
  private readonly quota: LlmQuotaGuard | undefined;
  private readonly providers: Record<LlmSettings['provider'], LlmProvider>;
  private readonly limiter: TenantLimiter;
  private readonly concurrency: LlmConcurrencyGuard | undefined;
  private readonly slotWaitMs: number | undefined;
  private readonly penalties: ModelPenalties;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly penaltyScope: 'tenant' | 'endpoint';
  private readonly prices: LlmPriceTable;
  private readonly onCall: ((call: LlmCallObservation) => void) | undefined;

  constructor(options: LlmClientOptions) {
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.rng = options.rng ?? Math.random;
    this.secretBox = options.secretBox;
    this.quota = options.quota;
    this.providers = {
      local: options.providers?.local ?? new LocalProvider(),
      openai: options.providers?.openai ?? new OpenAiClient({ clock: this.clock }),
    };
    this.concurrency = options.concurrency;
    this.slotWaitMs = options.slotWaitMs;
    this.limiter = new TenantLimiter(
      Math.max(1, options.maxConcurrentPerTenant ?? options.concurrency?.maxPerTenant ?? 4),
    );
    this.penalties = new ModelPenalties(this.clock, options.penaltyHalfLifeMs ?? 60_000);
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 8000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.penaltyScope = options.penaltyScope ?? 'tenant';
    this.prices = options.prices ?? {};
    this.onCall = options.onCall;
  }

  async complete(req: LlmCallRequest): Promise<LlmCallResult> {
    if (req.db && req.db.ctx.tenantId !== req.tenantId) {
      throw new IsolationViolationError(
        'LLM usage of one tenant cannot be recorded in another tenant’s unit of work',
      );
    }
    const quota = this.quota;
    const ticket = await quota?.reserve(req.tenantId);
    const usage: LlmUsageRecord[] = [];
    const release = await this.limiter.acquire(req.tenantId);
    try {
      return await this.run(req, usage);
    } finally {
      release();
      if (quota && ticket) await this.settle(quota, ticket, usage);
    }
  }

  /** Books a call's usage; a metering failure is logged, never the call's failure. */
  private async settle(quota: LlmQuotaGuard, ticket: LlmQuotaTicket, usage: LlmUsageRecord[]): Promise<void> {
    try {
      await quota.settle(ticket, usage);
    } catch (err) {
      this.logger.warn({ err, tenant_id: ticket.tenantId }, 'llm quota usage not booked');
    }
  }

  /** Backoff before retry number `retry` (0-based): equal jitter over an exponential ceiling. */
  private backoffMs(retry: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** retry);
    return Math.round(ceiling / 2 + (this.rng() * ceiling) / 2);
  }

  private openApiKey(sealed: string | undefined, req: LlmCallRequest): string | undefined {
    if (sealed === undefined) return undefined;
    if (!this.secretBox)
      throw new LlmError('rejected', 'an API key is configured but no server key can open it');
    try {
      return this.secretBox.decrypt(sealed);
    } catch (err) {
      // Every call of the agent fails until an operator acts: say so loudly, and what to do.
      const message =
        'the stored LLM API key cannot be opened with MAIHIVE_SECRET_KEY: the server key was changed ' +
        '(set the old one in MAIHIVE_SECRET_KEY_PREVIOUS) or the stored key was altered';
      this.logger.error({ err, tenant_id: req.tenantId, agent_id: req.agentId }, message);
      throw new LlmError('rejected', message, { cause: err });
    }
  }

  /**
   * A shared slot for one HTTP call to a remote provider, or undefined when none is needed: the
   * local provider makes no network call, so it is left to the in-process limit (and spared two
   * Redis round trips). Throws `LlmConcurrencyTimeoutError`, carrying the call's earlier attempts
   * and usage, when no slot frees in time.
   */
  private async takeSlot(
    req: LlmCallRequest,
    remote: boolean,
    failures: LlmAttemptFailure[],
    usage: LlmUsageRecord[],
  ): Promise<LlmSlot | undefined> {
    if (!remote || !this.concurrency) return undefined;
    const waitMs = this.slotWaitMs ?? req.settings.timeout_ms;
    const slot = await this.concurrency.acquire(req.tenantId, {
      callTimeoutMs: req.settings.timeout_ms,
      waitMs,
    });
    if (slot) return slot;
    this.logger.warn(
      {
        tenant_id: req.tenantId,
        agent_id: req.agentId,
        limit: this.concurrency.maxPerTenant,
        wait_ms: waitMs,
      },
      'no llm call slot free in time',
    );
    throw new LlmConcurrencyTimeoutError(req.tenantId, this.concurrency.maxPerTenant, waitMs, {
      details: { attempts: failures, usage },
    });
  }

  /** Gives a shared slot back; a failed release is logged (the slot's lease frees it later). */
  private releaseSlot(slot: LlmSlot | undefined, req: LlmCallRequest): void {
    // Not awaited, so the call's latency does not include it; the release is sent on the guard's
    // connection before any later acquire of this process, so those see the slot free.
    slot?.release().catch((err: unknown) => {
      this.logger.warn({ err, tenant_id: req.tenantId }, 'llm call slot not released; its lease frees it');
    });
  }

  /** `usage` collects one row per HTTP call as it happens (the caller meters them, even on failure). */
  private async run(req: LlmCallRequest, usage: LlmUsageRecord[]): Promise<LlmCallResult> {
    const s = req.settings;
    const provider = this.providers[s.provider];
    const remote = s.provider !== 'local';
    const apiKey = remote ? this.openApiKey(s.api_key_encrypted, req) : undefined;
    const penaltyKey = (model: string) =>
      [this.penaltyScope === 'tenant' ? req.tenantId : '', s.base_url ?? '', model].join('\u0000');
    const models = remote ? this.penalties.order(s.models, penaltyKey) : [LOCAL_MODEL];
    const log = this.logger.child({
      tenant_id: req.tenantId,
      agent_id: req.agentId,
      chat_stream_id: req.chatStreamId,
      request_type: req.requestType,
    });
    const failures: LlmAttemptFailure[] = [];
    const record = async (
      row: Omit<LlmUsageRecord, 'agentId' | 'platform' | 'chatStreamId' | 'messageId'>,
    ) => {
      const full: LlmUsageRecord = {
        agentId: req.agentId,
        platform: req.platform ?? null,
        chatStreamId: req.chatStreamId ?? null,
        messageId: req.messageId ?? null,
        ...row,
      };
      usage.push(full);
      this.onCall?.({ tenantId: req.tenantId, ...row });
      if (req.db) await recordLlmUsage(req.db, full);
    };

    const call: CallState = { req, provider, remote, apiKey, failures, usage };
    let last: LlmError | undefined;
    for (const model of models) {
      for (let retry = 0; ; retry++) {
        const a = await this.attempt(call, model);
        if (!a.ok) {
          const e = a.error;
          last = e;
          const policy = FAILURE_POLICY[e.kind];
          failures.push({ model, kind: e.kind, httpStatus: e.httpStatus, message: e.message });
          if (policy.penalise) this.penalties.fail(penaltyKey(model));
          await record({
            provider: provider.name,
            modelName: model,
            requestType: req.requestType,
            promptTokens: 0,
            completionTokens: 0,
            cost: 0,
            latencyMs: a.latencyMs,
            status: e.kind === 'timeout' ? 'timeout' : 'error',
            error: e.message.slice(0, MAX_USAGE_ERROR),
          });
          const waitMs = e.retryAfterMs ?? this.backoffMs(retry);
          const retrying = policy.retrySameModel && retry < s.max_retries && waitMs <= this.maxRetryAfterMs;
          log.warn(
            { model, kind: e.kind, http_status: e.httpStatus, retry, wait_ms: retrying ? waitMs : undefined },
            'llm call failed',
          );
          if (!policy.tryNextModel && !retrying) throw this.finalError(e, failures, usage);
          if (!retrying) break;
          await this.sleep(waitMs);
          continue;
        }
        // A failed usage write below is the caller's database error, not a model failure to retry.
        const { result: r, latencyMs } = a;
        const cost = costOf(
          priceFor(this.prices, model, s.cost_per_1k_tokens),
          r.promptTokens,
          r.completionTokens,
        );
        this.penalties.succeed(penaltyKey(model));
        await record({
          provider: provider.name,
          modelName: model,
          requestType: req.requestType,
          promptTokens: r.promptTokens,
          completionTokens: r.completionTokens,
          cost,
          latencyMs,
          status: 'success',
        });
        log.debug({ model, latency_ms: latencyMs, attempts: usage.length }, 'llm call succeeded');
        return { ...r, model, provider: provider.name, latencyMs, cost, attempts: usage.length, usage };
      }
    }
    throw this.finalError(last ?? new LlmError('rejected', 'no model configured'), failures, usage);
  }

  /**
   * One HTTP call to one model, holding a concurrency slot for just that call. A provider failure
   * is returned (the caller's retry policy decides), not thrown; waiting for a slot in vain throws.
   */
  private async attempt(call: CallState, model: string): Promise<AttemptOutcome> {
    const { req, provider } = call;
    const s = req.settings;
    const slot = await this.takeSlot(req, call.remote, call.failures, call.usage);
    const started = performance.now();
    let result: ProviderResult;
    try {
      result = await provider.complete({
        model,
        messages: req.messages,
        temperature: s.temperature,
        maxTokens: s.max_tokens,
        timeoutMs: s.timeout_ms,
        requestType: req.requestType,
        baseUrl: s.base_url,
        apiKey: call.apiKey,
        hints: req.hints,
      });
    } catch (err) {
      this.releaseSlot(slot, req);
      return { ok: false, error: asLlmError(err), latencyMs: Math.round(performance.now() - started) };
    }
    const latencyMs = Math.round(performance.now() - started);
    this.releaseSlot(slot, req);
    return { ok: true, result, latencyMs };
  }

  private finalError(last: LlmError, attempts: LlmAttemptFailure[], usage: LlmUsageRecord[]): LlmError {
    const message =
      attempts.length <= 1 ? last.message : `all ${attempts.length} LLM calls failed; last: ${last.message}`;
    return new LlmError(last.kind, message, {
      httpStatus: last.httpStatus,
      retryAfterMs: last.retryAfterMs,
      details: { attempts, usage },
      cause: last,
    });
  }
}
