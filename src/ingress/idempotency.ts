import { ValidationError } from '../errors';

/** A send is idempotent for 24 h per (tenant, agent, client message id). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

// Printable ASCII without spaces: the id ends a Redis key and is echoed in logs.
const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** What the first send under a client message id stored, so that a repeat can answer with it. */
export interface IdempotencyRecord {
  message_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
}

/**
 * The idempotency id of a send: `client_message_id`, else the `Idempotency-Key` header. Both may
 * be given only when they agree.
 */
export function idempotencyIdOf(
  clientMessageId: string | undefined,
  idempotencyKey: string | undefined,
): string | undefined {
  const given = [clientMessageId, idempotencyKey].filter((v): v is string => v !== undefined && v !== '');
  for (const [value, path] of [
    [clientMessageId, 'client_message_id'],
    [idempotencyKey, 'Idempotency-Key'],
  ] as const) {
    if (value !== undefined && value !== '' && !CLIENT_ID_PATTERN.test(value)) {
      throw new ValidationError('invalid idempotency id', [
        { path, issue: 'must be 1-255 printable ASCII characters without spaces' },
      ]);
    }
  }
  if (given.length === 2 && given[0] !== given[1]) {
    throw new ValidationError('client_message_id and Idempotency-Key disagree', [
      { path: 'Idempotency-Key', issue: 'must equal client_message_id when both are given' },
    ]);
  }
  return given[0];
}

export function parseIdempotencyRecord(value: string): IdempotencyRecord | undefined {
  try {
    const r = JSON.parse(value) as Partial<IdempotencyRecord>;
    if (
      typeof r.message_id === 'string' &&
      typeof r.agent_id === 'string' &&
      typeof r.platform === 'string' &&
      typeof r.chat_stream_id === 'string'
    ) {
      return r as IdempotencyRecord;
    }
  } catch {
    // a foreign or corrupt value: treated as absent by the caller
  }
  return undefined;
}
