import path from 'node:path';
import { Worker } from 'node:worker_threads';

import type { Logger } from '../logger';
import type { FromWorker, Invocation, ToWorker } from './sandboxWorker';

/**
 * Runs plugin components in a `worker_threads` thread, with a time budget per call.
 *
 * Why a worker thread rather than `node:vm`: a `vm` timeout stops only synchronous code (a plugin
 * awaiting forever, or looping inside a callback, is not stopped), a `vm` context shares the
 * process's heap (an out-of-memory plugin takes the server down) and is no security boundary. A
 * thread has its own heap (`resourceLimits`), can be terminated whatever it is doing, runs with an
 * empty environment, and reaches the server only by messages: the PluginAPI. What it does NOT
 * protect against: a plugin module is ordinary Node code, so it can `require('node:net')` or
 * `node:fs` and open its own connections or read files the server user can read. Plugins are code
 * the operator installed (built-in or `MAIHIVE_PLUGIN_DIR`), never code uploaded by tenants; the
 * sandbox keeps a faulty or slow plugin from failing or delaying messages, and the PluginAPI keeps
 * a plugin to its tenant's data, but it does not contain a hostile plugin.
 *
 * A call past its budget is given up (the message goes on without it). Should the thread not
 * answer a ping then (a synchronous loop), it is terminated and the next call starts a new one;
 * calls in flight on it fail as crashed.
 */

export class PluginCallError extends Error {
  constructor(
    readonly reason: 'timeout' | 'crash' | 'error',
    message: string,
  ) {
    super(message);
    this.name = 'PluginCallError';
  }
}

export interface SandboxCall extends Invocation {
  budgetMs: number;
  /** Answers the component's PluginAPI calls (grants checked there). */
  api: (method: string, args: unknown[]) => Promise<unknown>;
}

interface InFlight {
  resolve(value: unknown): void;
  reject(err: Error): void;
  api: SandboxCall['api'];
  worker: Worker;
}

/** How long a thread that overran a budget gets to answer a ping before it is terminated, ms. */
const PING_GRACE_MS = 200;

// The thread loads TypeScript modules (the built-ins) whether or not the server runs under tsx.
// The plugin modules are loaded as the thread starts, so that loading is not charged to a budget.
const BOOT = `
const { workerData } = require('node:worker_threads');
try { require('tsx/cjs/api').register(); } catch {}
require(workerData.entry);
for (const m of workerData.preload) { try { require(m); } catch {} }
require('node:worker_threads').parentPort.postMessage({ type: 'ready' });
`;

/** Least time between starts of a thread after one failed before it was ready, ms. */
const RESTART_BACKOFF_MS = 5000;

export class PluginSandbox {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, InFlight>();
  private readonly pings = new Map<number, () => void>();
  /** Threads that finished starting: only those can be judged stuck by a missing pong. */
  private readonly ready = new WeakSet<Worker>();
  private seq = 0;
  private closed = false;
  /** When a thread last failed before it was ready (ms since the epoch), for the restart backoff. */
  private lastFailedStart = -Infinity;
  /** Threads started so far (a restart after a crash or a hung plugin counts). */
  starts = 0;

  constructor(
    private readonly options: { logger?: Logger; maxHeapMb?: number; preload?: readonly string[] } = {},
  ) {}

  /** Starts the thread ahead of the first call (its start-up, ~1 s under tsx, is no call's budget). */
  start(): void {
    if (this.closed) return;
    try {
      this.thread();
    } catch {
      // In its restart backoff: the next call tries again.
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const now = Date.now();
    if (now - this.lastFailedStart < RESTART_BACKOFF_MS) {
      throw new PluginCallError('crash', 'the plugin sandbox thread could not start; retrying shortly');
    }
    const worker = new Worker(BOOT, {
      eval: true,
      // `.ts` under tsx, `.js` in the compiled build: the extension of this very file.
      workerData: {
        entry: path.join(__dirname, `sandboxWorker${path.extname(__filename)}`),
        preload: this.options.preload ?? [],
      },
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb ?? 64, maxYoungGenerationSizeMb: 16 },
      stdout: true,
      stderr: true,
    });
    this.starts++;
    worker.on('message', (m: FromWorker) => this.onMessage(worker, m));
    worker.on('error', (err) => {
      if (!this.ready.has(worker)) this.lastFailedStart = Date.now();
      this.options.logger?.warn({ err }, 'plugin sandbox thread failed');
    });
    worker.on('exit', () => {
      const current = this.worker === worker;
      const started = this.ready.has(worker);
      this.lost(worker, 'the plugin sandbox thread exited');
      if (!current || this.closed) return;
      // A thread that died under a plugin is replaced at once, not on the next call. One that
      // never came up (it cannot load: nothing a retry changes soon) is left to the next call,
      // at most one start per `RESTART_BACKOFF_MS`, rather than restarted in a loop.
      if (started) this.start();
    });
    // Plugins' console output is dropped rather than mixed into the server's log.
    worker.stdout.resume();
    worker.stderr.resume();
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (m.type === 'ready') {
      this.ready.add(worker);
      return;
    }
    if (m.type === 'pong') {
      this.pings.get(m.id)?.();
      return;
    }
    const call = this.calls.get(m.callId);
    if (m.type === 'done') {
      this.calls.delete(m.callId);
      if (!call) return;
      if (m.ok) call.resolve(m.value);
      else call.reject(new PluginCallError('error', m.error ?? 'plugin failed'));
      return;
    }
    // An API call of a call that is over (timed out, or a stray promise) is refused.
    const answer = (reply: ToWorker) => worker.postMessage(reply);
    if (!call) {
      answer({ type: 'api_result', id: m.id, ok: false, error: 'this plugin call is over' });
      return;
    }
    call.api(m.method, Array.isArray(m.args) ? m.args : []).then(
      (value) => answer({ type: 'api_result', id: m.id, ok: true, value }),
      (err: unknown) =>
        answer({
          type: 'api_result',
          id: m.id,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        }),
    );
  }

  /** Fails every call in flight on a thread that is gone, so the next call starts a new one. */
  private lost(worker: Worker, why: string): void {
    if (this.worker === worker) this.worker = undefined;
    for (const [id, call] of this.calls) {
      if (call.worker !== worker) continue;
      this.calls.delete(id);
      call.reject(new PluginCallError('crash', why));
    }
  }

  /** Runs one component; rejects with `PluginCallError` on error, crash or an overrun budget. */
  run(call: SandboxCall): Promise<unknown> {
    if (this.closed) return Promise.reject(new PluginCallError('crash', 'the plugin sandbox is closed'));
    let worker: Worker;
    try {
      worker = this.thread();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const callId = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.calls.delete(callId)) return;
        reject(
          new PluginCallError('timeout', `plugin call took longer than its budget of ${call.budgetMs} ms`),
        );
        void this.checkAlive(worker);
      }, call.budgetMs);
      const settle =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          fn(v);
        };
      this.calls.set(callId, {
        resolve: settle(resolve),
        reject: settle(reject),
        api: (method, args) => call.api(method, args),
        worker,
      });
      const { budgetMs: _budget, api: _api, ...invocation } = call;
      const message: ToWorker = { type: 'invoke', callId, ...invocation };
      worker.postMessage(message);
    });
  }

  /** Pings a thread that let a call overrun; terminates it when it does not answer (a busy loop). */
  private async checkAlive(worker: Worker): Promise<void> {
    // A thread still loading (tsx, the plugin modules) cannot answer yet; it is not stuck.
    if (!this.ready.has(worker)) return;
    const id = ++this.seq;
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), PING_GRACE_MS);
      this.pings.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      worker.postMessage({ type: 'ping', id } satisfies ToWorker);
    });
    this.pings.delete(id);
    if (answered || this.worker !== worker) return;
    this.options.logger?.warn('plugin sandbox thread stuck past a budget: restarting it');
    this.lost(worker, 'the plugin sandbox thread was restarted (a plugin did not yield)');
    await worker.terminate();
    // The next thread starts now, not on the next call.
    this.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker) {
      this.lost(worker, 'the plugin sandbox is closed');
      await worker.terminate();
    }
  }
}
