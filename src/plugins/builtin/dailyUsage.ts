import { z } from 'zod';

import type { PluginDefinition } from '../manifest';

const Config = z.strictObject({
  /** Platform user ids (e.g. QQ numbers) of the tenant's admins: only they may ask. */
  admin_user_ids: z.array(z.string().min(1).max(128)).max(100).default([]),
});

/** `/usage`: today's messages, replies, LLM requests, tokens and cost of the tenant, for its admins. */
const dailyUsage: PluginDefinition = {
  manifest: {
    manifest_version: 1,
    id: 'daily_usage',
    name: '今日用量',
    version: '1.0.0',
    description: "/usage tells the tenant's admins today's messages, replies, LLM requests, tokens and cost",
    author: 'MaiHive',
    categories: ['admin'],
    permissions: ['usage_read', 'message_send'],
  },
  configSchema: Config,
  commands: [
    {
      command_name: 'usage',
      command_description: "Today's usage of this tenant (admins only)",
      command_pattern: '^[/!](?:usage|用量)$',
      async execute({ message }, api) {
        const { admin_user_ids } = Config.parse(api.config);
        if (message.sender.user_id === null || !admin_user_ids.includes(message.sender.user_id)) {
          return { reply: '只有管理员可以查看用量', data: { allowed: false } };
        }
        const u = await api.usage.today();
        return {
          reply:
            `今日用量（UTC）：收到消息 ${u.messages_in} 条，回复 ${u.replies} 条，` +
            `LLM 请求 ${u.llm_requests} 次，${u.tokens} tokens，费用 ${u.cost}`,
          data: u,
        };
      },
    },
  ],
};

export default dailyUsage;
