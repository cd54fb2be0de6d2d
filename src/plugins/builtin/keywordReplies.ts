import { z } from 'zod';

import type { PluginDefinition } from '../manifest';

const Rule = z.strictObject({
  keyword: z.string().min(1).max(100),
  reply: z.string().min(1).max(2000),
  /** `contains` (default) or the whole message `exact`. */
  match: z.enum(['contains', 'exact']).default('contains'),
  /** The chats the rule answers in; empty: every chat of the tenant. */
  chat_stream_ids: z.array(z.string().min(1).max(128)).max(100).default([]),
});

const Config = z.strictObject({ rules: z.array(Rule).max(200).default([]) });

/** Answers messages containing a keyword with a fixed reply, per chat (an `on_message` handler). */
const keywordReplies: PluginDefinition = {
  manifest: {
    manifest_version: 1,
    id: 'keyword_replies',
    name: '关键词回复',
    version: '1.0.0',
    description: 'Fixed replies to messages containing keywords, configured per chat',
    author: 'MaiHive',
    categories: ['message_processing'],
    permissions: ['message_send'],
  },
  configSchema: Config,
  event_handlers: [
    {
      handler_name: 'reply_to_keywords',
      event_type: 'on_message',
      execute({ message }, api) {
        const { rules } = Config.parse(api.config);
        const text = message.content.normalize('NFKC').toLowerCase().trim();
        const chat = api.context.chat_stream_id;
        const rule = rules.find((r) => {
          if (r.chat_stream_ids.length > 0 && (chat === null || !r.chat_stream_ids.includes(chat)))
            return false;
          const k = r.keyword.normalize('NFKC').toLowerCase();
          return r.match === 'exact' ? text === k : text.includes(k);
        });
        return rule ? { reply: rule.reply, data: { keyword: rule.keyword } } : undefined;
      },
    },
  ],
};

export default keywordReplies;
