/**
 * Child process of `bench:isolation`: the noisy tenant. Its own process, so the flood's client
 * work does not sit in the event loop that times the quiet tenants. On `flood` it sends, closed
 * loop, either batches of 100 (`POST /chat/send/batch`, `concurrency` batches out at once) or
 * single sends (`POST /chat/send`, `concurrency` out at once) until `durationMs` pass, then
 * answers with what happened per second and the ids of every accepted message.
 *
 * As a well-behaved client does, it waits the `Retry-After` a refusal (429) carries before it sends
 * again (in seconds, the header's unit; batch items carry it as `details.retry_after_seconds`),
 * and a batch client sends its refused messages again rather than drop them. With
 * `ignoreRetryAfter` it sends again at once: an impolite client.
 */
import http from 'node:http';

import { type HttpResult, request } from './http';

export interface FloodCommand {
  type: 'flood';
  url: string;
  apiKey: string;
  mode: 'batch' | 'single';
  concurrency: number;
  durationMs: number;
  streams: number;
  ignoreRetryAfter: boolean;
  /** Distinguishes this flood's messages and streams from an earlier one's. */
  label: string;
}

/** Counts per second from the flood's start, and totals. */
export interface FloodResult {
  type: 'flood-done';
  mode: FloodCommand['mode'];
  started_at: number;
  requests: number[];
  accepted: number[];
  refused_429: number[];
  errors_5xx: number[];
  /** Other failures (4xx other than 429, network errors), by code. */
  other: Record<string, number>;
  /** `code` of refused items/requests → count. */
  refusals: Record<string, number>;
  accepted_ids: string[];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ItemError {
  code: string;
  details?: { retry_after_ms?: number; retry_after_seconds?: number };
}

function retryAfterMs(res: HttpResult, item?: ItemError): number {
  const seconds = item ? item.details?.retry_after_seconds : Number(res.headers['retry-after']);
  return seconds !== undefined && Number.isFinite(seconds) ? seconds * 1000 : 1000;
}

async function flood(c: FloodCommand): Promise<FloodResult> {
  const startedAt = Date.now();
  const seconds = Math.ceil(c.durationMs / 1000) + 5;
  const series = () => new Array<number>(seconds).fill(0);
  const r: FloodResult = {
    type: 'flood-done',
    mode: c.mode,
    started_at: startedAt,
    requests: series(),
    accepted: series(),
    refused_429: series(),
    errors_5xx: series(),
    other: {},
    refusals: {},
    accepted_ids: [],
  };
  const second = () => Math.min(seconds - 1, Math.floor((Date.now() - startedAt) / 1000));
  const stopAt = startedAt + c.durationMs;
  const headers = { 'x-api-key': c.apiKey };
  let n = 0;
  const body = () => {
    const i = n++;
    const stream = i % c.streams;
    return {
      message: `@麦麦 ${c.label} 第${i}条：大家快来看这个！`,
      chat_stream_id: `flood-${c.label}-${stream}`,
      platform: 'qq',
      sender_info: { user_id: `u${i % 301}`, username: `刷屏${i % 301}`, group_id: `g${stream}` },
    };
  };
  const other = (code: string) => void (r.other[code] = (r.other[code] ?? 0) + 1);
  const refusal = (code: string) => void (r.refusals[code] = (r.refusals[code] ?? 0) + 1);

  type Body = ReturnType<typeof body>;
  const wait = async (ms: number) => {
    if (!c.ignoreRetryAfter) await sleep(Math.min(ms, stopAt - Date.now()));
  };

  const single = async () => {
    const s = second();
    r.requests[s]!++;
    const res = await request(c.url, 'POST', '/chat/send', { body: body(), headers, agent });
    if (res.status === 200) {
      r.accepted[s]!++;
      r.accepted_ids.push((res.json as { data: { message_id: string } }).data.message_id);
    } else if (res.status === 429) {
      r.refused_429[s]!++;
      refusal((res.json as { error?: ItemError }).error?.code ?? 'unknown');
      await wait(retryAfterMs(res));
    } else if (res.status >= 500) r.errors_5xx[s]!++;
    else other(String(res.status));
  };

  /** One batch; returns the messages refused for rate or quota, to be sent again. */
  const batch = async (refusedBefore: Body[]): Promise<Body[]> => {
    const s = second();
    r.requests[s]!++;
    const messages = [...refusedBefore, ...Array.from({ length: 100 - refusedBefore.length }, body)];
    const res = await request(c.url, 'POST', '/chat/send/batch', { body: { messages }, headers, agent });
    if (res.status === 429) {
      r.refused_429[s]! += messages.length;
      refusal((res.json as { error?: ItemError }).error?.code ?? 'unknown');
      await wait(retryAfterMs(res));
      return messages;
    }
    if (res.status !== 200) {
      if (res.status >= 500) r.errors_5xx[s]! += messages.length;
      else other(String(res.status));
      return [];
    }
    type Item = { success: boolean; data?: { message_id: string }; error?: ItemError };
    const results = (res.json as { data: { results: Item[] } }).data.results;
    const refused: Body[] = [];
    let waitMs = 0;
    for (const [i, item] of results.entries()) {
      if (item.success) {
        r.accepted[s]!++;
        r.accepted_ids.push(item.data!.message_id);
      } else if (item.error?.code === 'RATE_LIMIT_EXCEEDED' || item.error?.code === 'QUOTA_EXCEEDED') {
        r.refused_429[s]!++;
        refusal(item.error.code);
        refused.push(messages[i]!);
        waitMs = Math.max(waitMs, retryAfterMs(res, item.error));
      } else if (item.error?.code === 'SERVICE_UNAVAILABLE' || item.error?.code === 'INTERNAL_ERROR') {
        r.errors_5xx[s]!++;
      } else other(item.error?.code ?? 'unknown');
    }
    if (waitMs > 0) await wait(waitMs);
    return refused;
  };

  const sender = async () => {
    let refused: Body[] = [];
    while (Date.now() < stopAt) {
      if (c.mode === 'single') await single();
      else refused = await batch(refused);
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, sender));
  return r;
}

process.on('message', (m: FloodCommand | { type: 'exit' }) => {
  if (m.type === 'exit') process.exit(0);
  if (m.type === 'flood') void flood(m).then((result) => process.send!(result));
});
process.send!({ type: 'ready' });
