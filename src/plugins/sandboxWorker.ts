import { parentPort } from 'node:worker_threads';

import { definitionOf } from './catalog';
import type { ComponentKind, PluginApi, PluginContext, PluginDefinition } from './manifest';

/**
 * The plugin sandbox's thread (started by `sandbox.ts`). It loads plugin modules and runs their
 * components; everything a component asks of the server goes as a message to the main thread,
 * which checks the plugin's grants and answers (`pluginApiHost.ts`). The thread is started with an
 * empty environment and without the server's handles: no pool, no Redis client, no keys.
 */

/** One component to run: which module, which component, with what. */
export interface Invocation {
  modulePath: string;
  kind: ComponentKind;
  name: string;
  input: unknown;
  context: PluginContext;
  config: Record<string, unknown>;
}

export type ToWorker =
  | ({ type: 'invoke'; callId: number } & Invocation)
  | { type: 'api_result'; id: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'ping'; id: number };

export type FromWorker =
  | { type: 'api'; callId: number; id: number; method: string; args: unknown[] }
  | { type: 'done'; callId: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'pong'; id: number }
  /** Posted by the boot script once the thread has loaded every plugin module. */
  | { type: 'ready' };

const port = parentPort!;
const modules = new Map<string, PluginDefinition>();
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let seq = 0;

function post(message: FromWorker): void {
  port.postMessage(message);
}

function load(modulePath: string): PluginDefinition {
  let def = modules.get(modulePath);
  if (!def) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    def = definitionOf(require(modulePath)) as PluginDefinition;
    modules.set(modulePath, def);
  }
  return def;
}

function component(def: PluginDefinition, kind: ComponentKind, name: string) {
  const found =
    kind === 'command'
      ? def.commands?.find((c) => c.command_name === name)
      : kind === 'action'
        ? def.actions?.find((a) => a.action_name === name)
        : def.event_handlers?.find((h) => h.handler_name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found as { execute(input: unknown, api: PluginApi): unknown };
}

function apiFor(callId: number, context: PluginContext, config: Record<string, unknown>): PluginApi {
  const call =
    (method: string) =>
    (...args: unknown[]): Promise<never> =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        pending.set(id, { resolve: resolve, reject });
        post({ type: 'api', callId, id, method, args });
      });
  return {
    context: Object.freeze({ ...context }),
    config: Object.freeze({ ...config }),
    message: { recent: call('message.recent') },
    send: { text: call('send.text') },
    memory: { remember: call('memory.remember'), recall: call('memory.recall') },
    emoji: { pick: call('emoji.pick') },
    llm: { complete: call('llm.complete') },
    http: { fetch: call('http.fetch') },
    usage: { today: call('usage.today') },
    storage: { get: call('storage.get'), set: call('storage.set'), delete: call('storage.delete') },
  };
}

async function invoke(m: Extract<ToWorker, { type: 'invoke' }>): Promise<void> {
  try {
    const target = component(load(m.modulePath), m.kind, m.name);
    const value = await target.execute(m.input, apiFor(m.callId, m.context, m.config));
    post({ type: 'done', callId: m.callId, ok: true, value: value ?? {} });
  } catch (err) {
    post({
      type: 'done',
      callId: m.callId,
      ok: false,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'ping') post({ type: 'pong', id: m.id });
  else if (m.type === 'invoke') void invoke(m);
  else {
    const waiter = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) waiter?.resolve(m.value);
    else waiter?.reject(new Error(m.error ?? 'refused'));
  }
});

// A plugin's stray promise must not take the thread (and every other plugin's call) down.
process.on('unhandledRejection', () => undefined);
