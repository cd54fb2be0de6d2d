import { z } from 'zod';

import { IDENTIFIER_PATTERN } from '../domain/isolationContext';

/**
 * What a plugin is: a manifest, a config schema and components, in the shape MaiBot plugin
 * authors know (`src/plugin_system`: `_manifest.json`, `BaseAction` with `action_name` /
 * `action_description` / `activation_keywords`, `BaseCommand` with `command_pattern`,
 * `BaseEventHandler` with `event_type`). Code of the components runs only in the sandbox
 * (`sandbox.ts`); the server reads the rest.
 */

/** What a plugin may be granted. Each PluginAPI call needs one (see `pluginApiHost.ts`). */
export const PLUGIN_PERMISSIONS = [
  'message_read',
  'message_send',
  'memory_read',
  'memory_write',
  'emoji',
  'llm',
  'http',
  'usage_read',
] as const;
export type PluginPermission = (typeof PLUGIN_PERMISSIONS)[number];

export const EVENT_TYPES = ['on_message', 'post_llm', 'after_send'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Default and largest time budget of one plugin call, ms. */
export const DEFAULT_TIME_BUDGET_MS = 1000;
export const MAX_TIME_BUDGET_MS = 10_000;

export const PluginManifest = z.strictObject({
  manifest_version: z.literal(1),
  id: z.string().regex(IDENTIFIER_PATTERN),
  name: z.string().min(1).max(128),
  version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][\w.-]+)?$/, 'a semantic version, e.g. 1.0.0'),
  description: z.string().min(1).max(1000),
  author: z.string().max(128).optional(),
  license: z.string().max(64).optional(),
  categories: z.array(z.string().regex(IDENTIFIER_PATTERN)).max(10).default([]),
  permissions: z.array(z.enum(PLUGIN_PERMISSIONS)).max(PLUGIN_PERMISSIONS.length).default([]),
  /** Longest a call of this plugin may take before its answer is given up, ms. */
  time_budget_ms: z.number().int().min(10).max(MAX_TIME_BUDGET_MS).default(DEFAULT_TIME_BUDGET_MS),
});
export type PluginManifest = z.infer<typeof PluginManifest>;

/** Who and where a component runs for: the message's isolation context, as the plugin sees it. */
export interface PluginContext {
  agent_id: string;
  platform: string | null;
  chat_stream_id: string | null;
}

/** The message a command, action or `on_message` handler looks at. */
export interface PluginMessage {
  message_id: string | null;
  content: string;
  sender: { user_id: string | null; nickname: string | null };
}

/** What a component returns: text to answer with (sent only with `message_send`), data for the caller. */
export interface ComponentResult {
  reply?: string;
  data?: unknown;
}

/** The API a component gets, bound to its call: every method checks the plugin's grants. */
export interface PluginApi {
  readonly context: PluginContext;
  readonly config: Record<string, unknown>;
  message: { recent(limit?: number): Promise<{ sender: string; content: string; from_bot: boolean }[]> };
  send: { text(text: string): Promise<void> };
  memory: {
    remember(content: string, tags?: string[]): Promise<{ memory_id: string }>;
    recall(query: string, limit?: number): Promise<{ memory_id: string; content: string }[]>;
  };
  emoji: { pick(emotion?: string): Promise<string> };
  llm: { complete(prompt: string): Promise<string> };
  http: { fetch(url: string): Promise<{ status: number; body: string }> };
  usage: { today(): Promise<Record<string, number>> };
  /** The plugin's own state in this tenant (no permission: nobody else's state is reachable). */
  storage: {
    get(key: string): Promise<unknown>;
    set(key: string, value: unknown): Promise<void>;
    delete(key: string): Promise<void>;
  };
}

export interface CommandInput {
  message: PluginMessage;
  /** Named groups of `command_pattern`. */
  args: Record<string, string>;
}

export interface CommandComponent {
  command_name: string;
  command_description: string;
  /** A regular expression (source) matched against the whole trimmed message. */
  command_pattern: string;
  execute(input: CommandInput, api: PluginApi): Promise<ComponentResult> | ComponentResult;
}

export interface ActionComponent {
  action_name: string;
  /** Shown to the planner: when choosing this action fits. */
  action_description: string;
  /**
   * When the action is put on the planner's list (MaiBot's `ActionActivationType`, either case):
   * `always`, `keyword` (a message of the batch contains one of `activation_keywords`), `random`
   * (`random_activation_probability`), `llm_judge` (listed with `llm_judge_prompt`; the planner
   * judges), `never`. Default `keyword` when keywords are given, else `always`.
   */
  activation_type?:
    | 'always'
    | 'never'
    | 'random'
    | 'keyword'
    | 'llm_judge'
    | Uppercase<'always' | 'never' | 'random' | 'keyword' | 'llm_judge'>;
  activation_keywords?: string[];
  keyword_case_sensitive?: boolean;
  random_activation_probability?: number;
  llm_judge_prompt?: string;
  /** Parameter name → what the planner should put in it; chosen values arrive in `parameters`. */
  action_parameters?: Record<string, string>;
  /** When to choose the action, shown to the planner. */
  action_require?: string[];
  execute(
    input: { message: PluginMessage | null; parameters: Record<string, unknown> },
    api: PluginApi,
  ): Promise<ComponentResult> | ComponentResult;
}

export interface EventHandlerComponent {
  handler_name: string;
  event_type: EventType;
  execute(
    event: { type: EventType; message: PluginMessage; reply: string | null },
    api: PluginApi,
  ): Promise<ComponentResult | void> | ComponentResult | void;
}

/** A plugin module's export (or what its default-exported function returns given `{ z }`). */
export interface PluginDefinition {
  manifest: z.input<typeof PluginManifest>;
  configSchema?: z.ZodType<Record<string, unknown>>;
  commands?: CommandComponent[];
  actions?: ActionComponent[];
  event_handlers?: EventHandlerComponent[];
}

export type ComponentKind = 'command' | 'action' | 'event';
