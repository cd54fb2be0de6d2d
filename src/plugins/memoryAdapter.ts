import type { TenantDb } from '../db/database';
import { listMemories, storeMemory } from '../db/repositories/memories';
import { newId } from '../domain/ids';
import type { PluginContext } from './manifest';

/**
 * The memory chest as plugins reach it (`/remember`, `/recall`, `api.memory`): the one place the
 * plugin system touches memories, so the Memory API's ranked search can replace `recall` here
 * without a plugin noticing. Today: the agent's newest memories (chat ones of this chat) whose text
 * contains the query, case- and width-insensitively (works for Chinese without spaces).
 */
export const pluginMemory = {
  async remember(
    db: TenantDb,
    ctx: PluginContext,
    pluginId: string,
    content: string,
    tags: string[],
  ): Promise<{ memory_id: string }> {
    const chat = ctx.chat_stream_id !== null && ctx.platform !== null;
    const row = await storeMemory(db, {
      memoryId: newId('mem'),
      agentId: ctx.agent_id,
      scope: chat ? 'chat' : 'agent',
      platform: ctx.platform,
      chatStreamId: ctx.chat_stream_id,
      content,
      memoryType: 'fact',
      tags,
      metadata: { source: 'plugin', plugin_id: pluginId },
    });
    return { memory_id: row.memory_id };
  },

  async recall(
    db: TenantDb,
    ctx: PluginContext,
    query: string,
    limit: number,
  ): Promise<{ memory_id: string; content: string }[]> {
    const norm = (s: string) => s.normalize('NFKC').toLowerCase();
    const q = norm(query.trim());
    const rows = await listMemories(db, { agentId: ctx.agent_id, limit: 500 });
    return rows
      .filter((m) => m.chat_stream_id === null || m.chat_stream_id === ctx.chat_stream_id)
      .filter((m) => q === '' || norm(m.content).includes(q))
      .slice(0, limit)
      .map((m) => ({ memory_id: m.memory_id, content: m.content }));
  },
};
