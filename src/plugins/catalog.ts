import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { type ActionSpec, ACTIVATION_TYPES } from '../domain/heartflow/actions';
import type { Logger } from '../logger';
import { type EventType, type PluginDefinition, PluginManifest } from './manifest';

/** A plugin the server offers, as read (and checked) from its module. */
export interface CatalogEntry {
  manifest: PluginManifest;
  configSchema: z.ZodType<Record<string, unknown>>;
  /** The module the sandbox loads to run the components. */
  modulePath: string;
  source: 'builtin' | 'operator';
  commands: { name: string; description: string; pattern: RegExp }[];
  /** Actions with their activation (MaiBot's names), as the planner is offered them. */
  actions: ActionSpec[];
  events: { name: string; type: EventType }[];
}

/**
 * Built-in plugins, by module file under `builtin/`: `.ts` when the sources run through tsx
 * (`npm start`, tests), `.js` in the compiled build (`dist/`, as pm2 runs it) — the extension of
 * this very file says which.
 */
export const BUILTIN_MODULES = ['dice', 'memoryChest', 'keywordReplies', 'dailyUsage'].map((name) =>
  path.join(__dirname, 'builtin', `${name}${path.extname(__filename)}`),
);

const Name = z.string().regex(/^[A-Za-z][\w.-]{0,63}$/);
const Fn = z.custom<(...args: unknown[]) => unknown>((v) => typeof v === 'function', 'must be a function');
const Components = z.object({
  commands: z
    .array(
      z.object({
        command_name: Name,
        command_description: z.string().min(1).max(500),
        command_pattern: z.string().min(1).max(500),
        execute: Fn,
      }),
    )
    .max(50)
    .default([]),
  actions: z
    .array(
      z.object({
        action_name: Name,
        action_description: z.string().min(1).max(500),
        /** MaiBot's `ActionActivationType` (`ALWAYS` or `always`); default keyword when keywords are given. */
        activation_type: z
          .preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(ACTIVATION_TYPES))
          .optional(),
        activation_keywords: z.array(z.string().min(1).max(64)).max(50).optional(),
        keyword_case_sensitive: z.boolean().optional(),
        random_activation_probability: z.number().min(0).max(1).optional(),
        llm_judge_prompt: z.string().min(1).max(500).optional(),
        action_parameters: z
          .record(z.string().regex(/^[A-Za-z_][\w]{0,31}$/), z.string().max(200))
          .refine((p) => Object.keys(p).length <= 10, 'at most 10 parameters')
          .optional(),
        action_require: z.array(z.string().min(1).max(200)).max(10).optional(),
        execute: Fn,
      }),
    )
    .max(50)
    .default([]),
  event_handlers: z
    .array(
      z.object({
        handler_name: Name,
        event_type: z.enum(['on_message', 'post_llm', 'after_send']),
        execute: Fn,
      }),
    )
    .max(50)
    .default([]),
});

/**
 * The definition a module exports: the object itself, its `default`, or what a function of those
 * returns when given `{ z }` (so an operator's plugin need not resolve its own zod).
 */
export function definitionOf(mod: unknown): unknown {
  const exported = (mod as { default?: unknown } | null)?.default ?? mod;
  return typeof exported === 'function' ? (exported as (kit: { z: typeof z }) => unknown)({ z }) : exported;
}

/** Checks a definition; the problems, or the entry. */
export function readDefinition(
  raw: unknown,
  modulePath: string,
  source: CatalogEntry['source'],
): { entry: CatalogEntry } | { problems: string[] } {
  const def = (raw ?? {}) as PluginDefinition;
  const manifest = PluginManifest.safeParse(def.manifest);
  const components = Components.safeParse(def);
  const problems = [
    ...(manifest.success
      ? []
      : manifest.error.issues.map((i) => `manifest.${i.path.join('.')}: ${i.message}`)),
    ...(components.success ? [] : components.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)),
  ];
  const schema = def.configSchema ?? z.strictObject({});
  if (typeof (schema as { safeParse?: unknown }).safeParse !== 'function')
    problems.push('configSchema: not a zod schema');
  for (const a of components.success ? components.data.actions : []) {
    const type = a.activation_type ?? (a.activation_keywords?.length ? 'keyword' : 'always');
    if (type === 'keyword' && !a.activation_keywords?.length)
      problems.push(`actions.${a.action_name}.activation_keywords: a keyword action needs keywords`);
    if (type === 'random' && a.random_activation_probability === undefined)
      problems.push(`actions.${a.action_name}.random_activation_probability: a random action needs one`);
  }
  const commands: CatalogEntry['commands'] = [];
  for (const c of components.success ? components.data.commands : []) {
    try {
      commands.push({
        name: c.command_name,
        description: c.command_description,
        pattern: new RegExp(c.command_pattern, 'su'),
      });
    } catch (err) {
      problems.push(`commands.${c.command_name}.command_pattern: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0 || !manifest.success || !components.success) return { problems };
  return {
    entry: {
      manifest: manifest.data,
      configSchema: schema,
      modulePath,
      source,
      commands,
      actions: components.data.actions.map((a) => ({
        name: a.action_name,
        description: a.action_description,
        activationType: a.activation_type ?? (a.activation_keywords?.length ? 'keyword' : 'always'),
        keywords: a.activation_keywords ?? [],
        keywordCaseSensitive: a.keyword_case_sensitive ?? false,
        randomProbability: a.random_activation_probability ?? 0,
        parameters: a.action_parameters ?? {},
        require: a.action_require ?? [],
        judgePrompt: a.llm_judge_prompt,
      })),
      events: components.data.event_handlers.map((h) => ({ name: h.handler_name, type: h.event_type })),
    },
  };
}

/** The module files of an operator's plugin directory: `<dir>/<plugin>/index.js` or `<dir>/<plugin>.js`. */
function operatorModules(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) {
        const index = path.join(full, 'index.js');
        return existsSync(index) ? [index] : [];
      }
      return name.endsWith('.js') ? [full] : [];
    });
}

/**
 * Every plugin of this server: the built-ins and those of `MAIHIVE_PLUGIN_DIR`. A module whose
 * manifest or components do not check out, or whose id is taken, is left out and logged (and
 * listed in `rejected`); the server starts regardless. Loading a module runs its top-level code
 * in this process: operator plugins are code the operator chose to install, like the server's.
 */
export class PluginCatalog {
  private readonly entries = new Map<string, CatalogEntry>();
  readonly rejected: { modulePath: string; problems: string[] }[] = [];

  constructor(entries: readonly CatalogEntry[] = []) {
    for (const e of entries) this.entries.set(e.manifest.id, e);
  }

  static load(options: {
    pluginDir?: string | undefined;
    logger?: Logger;
    builtins?: readonly string[];
  }): PluginCatalog {
    const catalog = new PluginCatalog();
    const modules = [
      ...(options.builtins ?? BUILTIN_MODULES).map((m) => [m, 'builtin'] as const),
      ...(options.pluginDir && existsSync(options.pluginDir) ? operatorModules(options.pluginDir) : []).map(
        (m) => [m, 'operator'] as const,
      ),
    ];
    for (const [modulePath, source] of modules) {
      let result: ReturnType<typeof readDefinition>;
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        result = readDefinition(definitionOf(require(modulePath)), modulePath, source);
      } catch (err) {
        result = { problems: [`cannot load: ${(err as Error).message}`] };
      }
      if ('entry' in result && catalog.entries.has(result.entry.manifest.id)) {
        result = { problems: [`plugin id ${result.entry.manifest.id} is taken`] };
      }
      if ('entry' in result) catalog.entries.set(result.entry.manifest.id, result.entry);
      else {
        catalog.rejected.push({ modulePath, problems: result.problems });
        options.logger?.warn({ module: modulePath, problems: result.problems }, 'plugin rejected');
      }
    }
    return catalog;
  }

  get(pluginId: string): CatalogEntry | undefined {
    return this.entries.get(pluginId);
  }

  all(): CatalogEntry[] {
    return [...this.entries.values()];
  }
}
