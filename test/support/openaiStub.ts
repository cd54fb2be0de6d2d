import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the stub answers one request for a model. */
export type StubBehaviour =
  | {
      kind: 'success';
      content: string;
      /** Reported usage; omitted = no `usage` field in the answer. */
      usage?: { prompt_tokens: number; completion_tokens: number };
      /** Wait before answering, ms (longer than the client's timeout = a timeout). */
      delayMs?: number;
    }
  | { kind: 'error'; status: number; message?: string; headers?: Record<string, string>; delayMs?: number }
  | { kind: 'malformed'; body?: string }
  /** Answers successfully with what `answer` makes of the request body (say, by its prompt). */
  | { kind: 'dynamic'; answer: (body: Record<string, unknown>) => string }
  /** Answers (successfully) only after `delayMs`; meant to exceed the client's timeout. */
  | { kind: 'slow'; delayMs: number; content?: string }
  /** Sends 200 and half a body, then nothing more for `delayMs`. */
  | { kind: 'stall'; delayMs: number };

export interface RecordedRequest {
  model: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/**
 * A real HTTP server on port 0 speaking OpenAI's chat-completions wire format. Each model gets a
 * script of behaviours consumed one per request (the last one repeats); unknown models get 404.
 * Requests are recorded, and the number in flight (overall and per model) is tracked.
 */
export class OpenAiStub {
  readonly requests: RecordedRequest[] = [];
  /** Most requests in flight at once, per model. */
  readonly maxInFlightByModel = new Map<string, number>();
  maxInFlight = 0;
  private inFlight = 0;
  private readonly inFlightByModel = new Map<string, number>();
  private readonly scripts = new Map<string, StubBehaviour[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server: Server | undefined;
  private url: string | undefined;

  /** Sets the answers for a model: one behaviour, or a sequence whose last entry repeats. */
  on(model: string, behaviour: StubBehaviour | StubBehaviour[]): this {
    this.scripts.set(model, Array.isArray(behaviour) ? [...behaviour] : [behaviour]);
    return this;
  }

  /** Forgets scripts, recorded requests and in-flight maxima. */
  reset(): void {
    this.scripts.clear();
    this.requests.length = 0;
    this.maxInFlight = 0;
    this.maxInFlightByModel.clear();
  }

  /** The `base_url` to configure (ends in `/v1`). */
  get baseUrl(): string {
    if (!this.url) throw new Error('OpenAiStub is not started');
    return this.url;
  }

  requestsFor(model: string): RecordedRequest[] {
    return this.requests.filter((r) => r.model === model);
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private next(model: string): StubBehaviour | undefined {
    const script = this.scripts.get(model);
    if (!script || script.length === 0) return undefined;
    return script.length > 1 ? script.shift() : script[0];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = req.url ?? '';
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      return this.send(res, 404, { error: { message: `no route ${req.method} ${path}` } });
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.send(res, 400, { error: { message: 'request body is not JSON' } });
    }
    const model = typeof body.model === 'string' ? body.model : '';
    this.requests.push({ model, path, headers: req.headers, body });

    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const mine = (this.inFlightByModel.get(model) ?? 0) + 1;
    this.inFlightByModel.set(model, mine);
    this.maxInFlightByModel.set(model, Math.max(this.maxInFlightByModel.get(model) ?? 0, mine));
    // In flight until answered or abandoned by the client (a timed-out request stops counting).
    res.once('close', () => {
      this.inFlight--;
      this.inFlightByModel.set(model, (this.inFlightByModel.get(model) ?? 1) - 1);
    });
    await this.answer(model, res, body);
  }

  private async answer(model: string, res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const b = this.next(model);
    if (!b) {
      return this.send(res, 404, {
        error: {
          message: `The model \`${model}\` does not exist`,
          type: 'invalid_request_error',
          code: 'model_not_found',
        },
      });
    }
    switch (b.kind) {
      case 'dynamic':
        return this.send(res, 200, {
          id: `chatcmpl-${this.requests.length}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [
            { index: 0, message: { role: 'assistant', content: b.answer(body) }, finish_reason: 'stop' },
          ],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        });
      case 'success':
      case 'slow': {
        await this.delay(b.delayMs ?? 0);
        const content = b.content ?? 'slow answer';
        return this.send(res, 200, {
          id: `chatcmpl-${this.requests.length}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          ...(b.kind === 'success' && b.usage
            ? { usage: { ...b.usage, total_tokens: b.usage.prompt_tokens + b.usage.completion_tokens } }
            : {}),
        });
      }
      case 'error':
        await this.delay(b.delayMs ?? 0);
        return this.send(
          res,
          b.status,
          { error: { message: b.message ?? `stub error ${b.status}`, type: 'stub_error' } },
          b.headers,
        );
      case 'stall':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id": "chatcmpl-stall", "choices": [');
        await this.delay(b.delayMs);
        res.end(']}');
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(b.body ?? '{"choices": [ {"message": ');
        return;
    }
  }

  private send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    // The client may have given up (timeout) and closed the socket.
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }
}
