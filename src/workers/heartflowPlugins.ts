import type { MessageRow } from '../db/repositories/messages';
import type { HeartflowDecision } from '../domain/heartflow';
import type { ChatStreamContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import type { PluginContext, PluginMessage } from '../plugins/manifest';
import type { EnabledPlugin, PluginOutcome, PluginRuntime } from '../plugins/pluginRuntime';
import type { Reply } from './batchOutcome';

/**
 * Where the heartflow meets the plugin system. Before the planner: a command of an enabled
 * plugin matching the newest message of a batch answers it, else an `on_message` handler may
 * (keyword replies); the planner is offered the plugins' actions (`/name`); after the LLM,
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

/** A command (then an `on_message` handler) answering the newest message, or undefined. */
export async function intercept(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  target: MessageRow,
): Promise<Interception | undefined> {
  if (!deps.plugins || plugins.length === 0) return undefined;
  const message = pluginMessage(target);
  const command = await deps.plugins.runCommand(ctx.tenantId, plugins, message, contextOf(ctx));
  if (command?.reply != null) return { decision: pluginDecision(command, target), reply: replyOf(command) };
  const heard = await deps.plugins.emit(
    ctx.tenantId,
    plugins,
    'on_message',
    { message, reply: null },
    contextOf(ctx),
  );
  const answer = heard.find((o) => o.reply !== null);
  return answer ? { decision: pluginDecision(answer, target), reply: replyOf(answer) } : undefined;
}

/** Names of the plugin actions the planner may choose (`/name`). */
export function actionNames(plugins: readonly EnabledPlugin[]): string[] {
  return plugins.flatMap((p) => p.entry.actions.map((a) => a.name));
}

/** Runs a plugin action the planner chose; undefined when the decision is no plugin action. */
export async function actionReply(
  deps: PluginDeps,
  ctx: ChatStreamContext,
  plugins: readonly EnabledPlugin[],
  decision: HeartflowDecision,
  target: MessageRow,
): Promise<Reply | undefined> {
  const plugin = plugins.find((p) => p.entry.actions.some((a) => a.name === decision.action));
  if (!deps.plugins || !plugin) return undefined;
  const o = await deps.plugins.invoke(
    ctx.tenantId,
    plugin,
    'action',
    decision.action,
    { message: pluginMessage(target), parameters: {} },
    contextOf(ctx),
  );
  return replyOf(o);
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
