import type { LlmUsageRecord } from '../db/repositories/llmUsage';
import type { MessageRow } from '../db/repositories/messages';
import {
  type ActionSpec,
  activeActions,
  buildPlannerPrompt,
  type HeartflowDecision,
  parsePlannerAnswer,
  type PlannerChoice,
  type PlannerLine,
} from '../domain/heartflow';
import type { ChatStreamContext } from '../domain/isolationContext';
import { mulberry32, seedFromString } from '../domain/random';
import type { LlmClient } from '../llm/llmClient';
import type { LlmSettings } from '../llm/types';
import type { Logger } from '../logger';
import type { PluginContext, PluginMessage } from '../plugins/manifest';
import type { EnabledPlugin, PluginOutcome, PluginRuntime } from '../plugins/pluginRuntime';
import type { Reply } from './batchOutcome';

/**
 * Where the heartflow meets the plugin system. Before the planner: a command of an enabled
 * plugin matching any message of a batch answers that message, then an `on_message` handler may
 * answer the rest (keyword replies); the planner LLM is offered the plugins' activated actions
 * (and `/name` calls one); after the LLM,
 * `post_llm` handlers may replace the reply; after the reply is stored, `after_send` handlers
 * hear of it. A plugin that fails or overruns its budget is skipped: the message is answered as
 * if it were not there, at most one budget later.
 */

export interface PluginDeps {
  plugins?: PluginRuntime | undefined;
  logger: Logger;
}

/** What a plugin answered a batch with before the planner ran. */
export interface Interception {
  decision: HeartflowDecision;
  reply: Reply;
}

function contextOf(ctx: ChatStreamContext): PluginContext {
  return { agent_id: ctx.agentId, platform: ctx.platform, chat_stream_id: ctx.chatStreamId };
}

export function pluginMessage(m: MessageRow): PluginMessage {
  return {
    message_id: m.message_id,
    content: m.content,
    sender: { user_id: m.sender_user_id, nickname: m.sender_cardname ?? m.sender_nickname },
  };
}

/** The tenant's enabled plugins; none when the process has no plugin runtime or they cannot be read. */
export async function enabledPlugins(deps: PluginDeps, tenantId: string): Promise<EnabledPlugin[]> {
  if (!deps.plugins) return [];
  try {
    return await deps.plugins.enabled(tenantId);
  } catch (err) {
    deps.logger.warn({ err, tenant_id: tenantId }, 'plugins unavailable: answering without them');
    return [];
  }
}

function replyOf(o: PluginOutcome): Reply {
  return { text: o.reply, tokens: null, error: null, usage: [] };
}

function pluginDecision(o: PluginOutcome, target: MessageRow): HeartflowDecision {
  return {
    action: `plugin.${o.pluginId}.${o.component}`,
    reason: 'plugin_command',
    replyProbability: 1,
    targetMessageId: target.message_id,
    emotion: undefined,
  };
}

/**
 * Every message of a batch that a command of the tenant's enabled plugins answers, oldest first:
 * each is answered on its own (its own reply and action record), before the planner sees the
 * rest. A command that fails or overruns its budget answers nothing (the message stays in the
 * batch and is answered as usual).
 */
export async function interceptCommands(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  messages: readonly MessageRow[],
): Promise<Map<string, Interception>> {
  const answered = new Map<string, Interception>();
  if (!deps.plugins || !plugins.some((p) => p.entry.commands.length > 0)) return answered;
  // A plugin whose command overran its budget or crashed its thread is not asked again in this
  // pass: a flood of its commands costs one budget, not one per message.
  let usable = plugins;
  for (const m of messages) {
    const o = await deps.plugins.runCommand(ctx.tenantId, usable, pluginMessage(m), contextOf(ctx));
    if (o?.reply != null) answered.set(m.message_id, { decision: pluginDecision(o, m), reply: replyOf(o) });
    if (o?.error?.reason === 'timeout' || o?.error?.reason === 'crash')
      usable = usable.filter((p) => p.entry.manifest.id !== o.pluginId);
  }
  return answered;
}

/** The first `on_message` handler answering the newest message (keyword replies), or undefined. */
export async function onMessage(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  target: MessageRow,
): Promise<Interception | undefined> {
  if (!deps.plugins || !plugins.some((p) => p.entry.events.some((e) => e.type === 'on_message')))
    return undefined;
  const heard = await deps.plugins.emit(
    ctx.tenantId,
    plugins,
    'on_message',
    { message: pluginMessage(target), reply: null },
    contextOf(ctx),
  );
  const answer = heard.find((o) => o.reply !== null);
  return answer ? { decision: pluginDecision(answer, target), reply: replyOf(answer) } : undefined;
}

/** A plugin action as offered to the planner: its spec under a name unique among the offers. */
export interface OfferedAction {
  spec: ActionSpec;
  plugin: EnabledPlugin;
  /** The action's own name (what the sandbox runs). */
  actionName: string;
}

/**
 * The enabled plugins' actions that may be offered at all (not `never`). A name two plugins share
 * is offered as `<plugin_id>.<name>`.
 */
export function pluginActions(plugins: readonly EnabledPlugin[]): OfferedAction[] {
  const all = plugins.flatMap((plugin) =>
    plugin.entry.actions
      .filter((a) => a.activationType !== 'never')
      .map((a) => ({ plugin, spec: a, actionName: a.name })),
  );
  const count = new Map<string, number>();
  for (const a of all) count.set(a.actionName, (count.get(a.actionName) ?? 0) + 1);
  return all.map((a) =>
    count.get(a.actionName)! > 1
      ? { ...a, spec: { ...a.spec, name: `${a.plugin.entry.manifest.id}.${a.actionName}` } }
      : a,
  );
}

/** The offered actions activated for a batch (keywords in its messages, seeded random draws). */
export function activatedActions(
  offered: readonly OfferedAction[],
  texts: readonly string[],
  seed: string,
): OfferedAction[] {
  const active = new Set(
    activeActions(
      offered.map((o) => o.spec),
      texts,
      (name) => mulberry32(seedFromString(`${seed}:activate:${name}`)),
    ).map((a) => a.name),
  );
  return offered.filter((o) => active.has(o.spec.name));
}

/** The planner LLM's choice among the activated actions, with what the call cost. */
export interface PlannerOutcome {
  choice: PlannerChoice | undefined;
  usage: LlmUsageRecord[];
}

/**
 * Asks the planner LLM (request type `planner`) whether one of the activated plugin actions fits
 * better than a plain reply. Never throws: a failed call or an answer that names no offered action
 * leaves the rule planner's decision (`choice` undefined or `reply`).
 */
export async function choosePluginAction(
  deps: PluginDeps & { llm: LlmClient },
  ctx: ChatStreamContext,
  input: { actions: readonly OfferedAction[]; chat: PlannerLine[]; botName: string; target: MessageRow },
  settings: LlmSettings,
): Promise<PlannerOutcome> {
  const specs = input.actions.map((a) => a.spec);
  try {
    const result = await deps.llm.complete({
      tenantId: ctx.tenantId,
      agentId: ctx.agentId,
      platform: ctx.platform,
      chatStreamId: ctx.chatStreamId,
      messageId: input.target.message_id,
      requestType: 'planner',
      messages: buildPlannerPrompt({ botName: input.botName, chat: input.chat, actions: specs }),
      settings,
    });
    const choice = parsePlannerAnswer(result.content, specs);
    if (!choice)
      deps.logger.info(
        { message_id: input.target.message_id, answer: result.content.slice(0, 200) },
        'planner answer names no offered action: replying as planned',
      );
    return { choice, usage: result.usage };
  } catch (err) {
    deps.logger.warn(
      { err, message_id: input.target.message_id },
      'planner call failed: replying as planned',
    );
    return { choice: undefined, usage: (err as { usage?: LlmUsageRecord[] }).usage ?? [] };
  }
}

/** A plugin action run for a message, and how it ended. */
export interface ActionRun {
  /** `plugin.<id>.<action>`, as recorded. */
  action: string;
  outcome: PluginOutcome;
}

/**
 * Runs an offered action in the sandbox with the PluginAPI bound to the message's context and the
 * parameters the planner chose.
 */
export async function runAction(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  offered: OfferedAction,
  parameters: Record<string, unknown>,
  target: MessageRow,
): Promise<ActionRun | undefined> {
  if (!deps.plugins) return undefined;
  const outcome = await deps.plugins.invoke(
    ctx.tenantId,
    offered.plugin,
    'action',
    offered.actionName,
    { message: pluginMessage(target), parameters },
    contextOf(ctx),
  );
  return { action: `plugin.${offered.plugin.entry.manifest.id}.${offered.actionName}`, outcome };
}

/** The reply an action's outcome gives (none when it failed or answered nothing). */
export function actionReplyOf(run: ActionRun): Reply {
  return replyOf(run.outcome);
}

/** `post_llm`: the first handler answering replaces the generated reply. */
export async function afterLlm(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  target: MessageRow,
  reply: Reply,
): Promise<Reply> {
  if (
    !deps.plugins ||
    reply.text === null ||
    !plugins.some((p) => p.entry.events.some((e) => e.type === 'post_llm'))
  )
    return reply;
  const outcomes = await deps.plugins.emit(
    ctx.tenantId,
    plugins,
    'post_llm',
    { message: pluginMessage(target), reply: reply.text },
    contextOf(ctx),
  );
  const replaced = outcomes.find((o) => o.reply !== null);
  return replaced ? { ...reply, text: replaced.reply } : reply;
}

/** `after_send`: handlers hear of the stored reply; what they answer is ignored. */
export async function afterSend(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  target: MessageRow,
  text: string,
): Promise<void> {
  if (!deps.plugins || !plugins.some((p) => p.entry.events.some((e) => e.type === 'after_send'))) return;
  await deps.plugins.emit(
    ctx.tenantId,
    plugins,
    'after_send',
    { message: pluginMessage(target), reply: text },
    contextOf(ctx),
  );
}
