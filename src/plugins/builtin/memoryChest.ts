import type { PluginDefinition } from '../manifest';

/** `/remember <text>` stores a memory of the chat; `/recall <words>` finds them again. */
const memoryChest: PluginDefinition = {
  manifest: {
    manifest_version: 1,
    id: 'memory_chest',
    name: '记忆宝箱',
    version: '1.0.0',
    description: '/remember <text> keeps a note in the memory chest; /recall <words> finds notes again',
    author: 'MaiHive',
    categories: ['memory'],
    permissions: ['memory_read', 'memory_write', 'message_send'],
  },
  commands: [
    {
      command_name: 'remember',
      command_description: 'Remember a note: /remember 小明喜欢火锅',
      command_pattern: '^[/!](?:remember|记住)\\s+(?<text>.+)$',
      async execute({ args }, api) {
        const { memory_id } = await api.memory.remember(args.text!.trim(), ['remember']);
        return { reply: `记住了：${args.text!.trim()}`, data: { memory_id } };
      },
    },
    {
      command_name: 'recall',
      command_description: 'Find notes: /recall 火锅 (no words: the newest)',
      command_pattern: '^[/!](?:recall|回忆)(?:\\s+(?<query>.+))?$',
      async execute({ args }, api) {
        const found = await api.memory.recall((args.query ?? '').trim(), 5);
        if (found.length === 0) return { reply: '没有找到相关的记忆', data: { memories: [] } };
        return { reply: found.map((m, i) => `${i + 1}. ${m.content}`).join('\n'), data: { memories: found } };
      },
    },
  ],
};

export default memoryChest;
