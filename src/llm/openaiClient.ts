import { type Clock, systemClock } from '../domain/clock';
import {
  estimatePromptTokens,
  estimateTokens,
  LlmError,
  type LlmFailureKind,
  type LlmProvider,
  type ProviderRequest,
  type ProviderResult,
} from './types';

export interface OpenAiClientOptions {
  /** Resolves HTTP-date `Retry-After` values. Default the system clock. */
  clock?: Clock;
}

/** Longest provider error text kept in an error message (and so in `llm_usage.error`), characters. */
const MAX_ERROR_TEXT = 300;

function chatCompletionsUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/chat/completions`;
}

/** `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or an HTTP date; undefined if absent or unreadable. */
export function parseRetryAfter(headers: Headers, now: number): number | undefined {
  const ms = Number(headers.get('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function kindOfStatus(status: number): LlmFailureKind {
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  if (status === 404) return 'model_unavailable';
  return 'rejected';
}

/** The provider's own explanation from an error body (`{"error":{"message":…}}`), else the raw text. */
function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string };
    const message = typeof parsed.error === 'string' ? parsed.error : parsed.error?.message;
    if (typeof message === 'string') return message.slice(0, MAX_ERROR_TEXT);
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, MAX_ERROR_TEXT);
}

function nonNegativeInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

interface CompletionBody {
  choices?: { message?: { content?: unknown } }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

/**
 * One chat-completions call to an OpenAI-compatible endpoint (`POST {base_url}/chat/completions`,
 * non-streaming) over Node's global fetch. Every failure becomes an `LlmError` whose `kind` the
 * facade's policy table acts on; retries and failover are the facade's, not this class's.
 */
export class OpenAiClient implements LlmProvider {
  readonly name = 'openai';
  private readonly clock: Clock;

  constructor(options: OpenAiClientOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  async complete(req: ProviderRequest): Promise<ProviderResult> {
    if (req.baseUrl === undefined) throw new LlmError('rejected', 'the openai provider needs a base_url');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (req.apiKey !== undefined) headers.authorization = `Bearer ${req.apiKey}`;
    const body = JSON.stringify({
      model: req.model,
      messages: req.messages,
      temperature: req.temperature,
      max_tokens: req.maxTokens,
      stream: false,
    });

    let status: number;
    let text: string;
    let responseHeaders: Headers;
    try {
      // One deadline for connect, headers and body: a server that stalls mid-body times out too.
      const res = await fetch(chatCompletionsUrl(req.baseUrl), {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(req.timeoutMs),
      });
      status = res.status;
      responseHeaders = res.headers;
      text = await res.text();
    } catch (err) {
      // Duck-typed: fetch's errors may come from another realm (e.g. under a test VM).
      const { name, cause } = err as { name?: unknown; cause?: { name?: unknown; message?: unknown } };
      if (name === 'TimeoutError' || name === 'AbortError' || cause?.name === 'TimeoutError') {
        throw new LlmError('timeout', `no answer from ${req.model} within ${req.timeoutMs} ms`, {
          cause: err,
        });
      }
      const reason = typeof cause?.message === 'string' ? cause.message : String(err);
      throw new LlmError('network', `request to ${req.model} failed: ${reason}`.slice(0, MAX_ERROR_TEXT), {
        cause: err,
      });
    }

    if (status < 200 || status >= 300) {
      throw new LlmError(kindOfStatus(status), `HTTP ${status} from ${req.model}: ${errorText(text)}`, {
        httpStatus: status,
        retryAfterMs:
          status === 429 || status === 503 ? parseRetryAfter(responseHeaders, this.clock.now()) : undefined,
      });
    }
    return this.parseCompletion(req, status, text);
  }

  private parseCompletion(req: ProviderRequest, status: number, text: string): ProviderResult {
    let parsed: CompletionBody | null;
    try {
      parsed = JSON.parse(text) as CompletionBody | null;
    } catch (err) {
      throw new LlmError('bad_response', `malformed JSON from ${req.model}`, {
        httpStatus: status,
        cause: err,
      });
    }
    const content = Array.isArray(parsed?.choices) ? parsed.choices[0]?.message?.content : undefined;
    if (typeof content !== 'string') {
      throw new LlmError('bad_response', `no message content in the answer of ${req.model}`, {
        httpStatus: status,
      });
    }
    return {
      content,
      promptTokens: nonNegativeInt(parsed?.usage?.prompt_tokens) ?? estimatePromptTokens(req.messages),
      completionTokens: nonNegativeInt(parsed?.usage?.completion_tokens) ?? estimateTokens(content),
    };
  }
}
