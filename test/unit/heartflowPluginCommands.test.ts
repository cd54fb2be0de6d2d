import type { MessageRow } from '../../src/db/repositories/messages';
import { createChatStreamContext } from '../../src/domain/isolationContext';
import { createLogger } from '../../src/logger';
import type { PluginMessage } from '../../src/plugins/manifest';
import type { EnabledPlugin, PluginOutcome, PluginRuntime } from '../../src/plugins/pluginRuntime';
import { interceptCommands, pluginActions } from '../../src/workers/heartflowPlugins';

/** `interceptCommands` with a stand-in runtime: which messages of a batch each command answers. */

const ctx = createChatStreamContext({
  tenantId: 'acme',
  agentId: 'default',
  platform: 'qq',
  chatStreamId: 's1',
});
const logger = createLogger({ level: 'silent' });

function plugin(
  id: string,
  commands: string[],
  actions: { name: string; type?: string }[] = [],
): EnabledPlugin {
  return {
    entry: {
      manifest: { id },
      commands: commands.map((name) => ({ name, description: name, pattern: new RegExp(`^/${name}$`) })),
      actions: actions.map((a) => ({ name: a.name, activationType: a.type ?? 'always' })),
      events: [],
    },
    row: { permissions: ['message_send'] },
  } as unknown as EnabledPlugin;
}

const message = (id: string, content: string) =>
  ({
    message_id: id,
    content,
    sender_user_id: 'u1',
    sender_nickname: null,
    sender_cardname: null,
  }) as MessageRow;

function runtime(answer: (pluginIds: string[], m: PluginMessage) => Partial<PluginOutcome> | undefined) {
  const calls: { plugins: string[]; message: string }[] = [];
  const fake = {
    runCommand: (_tenant: string, plugins: readonly EnabledPlugin[], m: PluginMessage) => {
      const ids = plugins.map((p) => p.entry.manifest.id);
      calls.push({ plugins: ids, message: m.content });
      const o = answer(ids, m);
      return Promise.resolve(
        o && {
          pluginId: ids[0]!,
          component: 'c',
          kind: 'command',
          reply: null,
          data: null,
          error: null,
          durationMs: 0,
          ...o,
        },
      );
    },
  };
  return { plugins: fake as unknown as PluginRuntime, calls };
}

describe('commands in a batch', () => {
  it('answers every message a command matches, each with its own decision, and leaves the rest', async () => {
    const { plugins, calls } = runtime((_ids, m) =>
      m.content.startsWith('/roll')
        ? { pluginId: 'dice', component: 'roll', reply: `rolled ${m.message_id}` }
        : undefined,
    );
    const batch = [
      message('m1', '/roll'),
      message('m2', 'hello'),
      message('m3', '/roll'),
      message('m4', 'bye'),
    ];
    const answered = await interceptCommands({ plugins, logger }, ctx, [plugin('dice', ['roll'])], batch);
    expect([...answered.keys()]).toEqual(['m1', 'm3']);
    expect(answered.get('m3')).toEqual({
      decision: expect.objectContaining({
        action: 'plugin.dice.roll',
        reason: 'plugin_command',
        targetMessageId: 'm3',
      }) as unknown,
      reply: expect.objectContaining({ text: 'rolled m3' }) as unknown,
    });
    expect(calls.map((c) => c.message)).toEqual(['/roll', 'hello', '/roll', 'bye']);
  });

  it('does not ask a plugin again in the same pass once its command overran its budget or crashed', async () => {
    const { plugins, calls } = runtime((ids, m) => {
      if (m.content === '/hang' && ids.includes('faulty'))
        return { pluginId: 'faulty', error: { reason: 'timeout', message: 'budget' } };
      if (m.content === '/roll') return { pluginId: 'dice', reply: 'rolled' };
      return undefined;
    });
    const batch = [message('m1', '/hang'), message('m2', '/hang'), message('m3', '/roll')];
    const answered = await interceptCommands(
      { plugins, logger },
      ctx,
      [plugin('faulty', ['hang']), plugin('dice', ['roll'])],
      batch,
    );
    expect([...answered.keys()]).toEqual(['m3']);
    expect(calls).toEqual([
      { plugins: ['faulty', 'dice'], message: '/hang' },
      { plugins: ['dice'], message: '/hang' },
      { plugins: ['dice'], message: '/roll' },
    ]);
  });

  it('offers actions under their own name, qualified by plugin only when two plugins share it; never `never`', () => {
    const offered = pluginActions([
      plugin('a', [], [{ name: 'wave' }, { name: 'weather' }, { name: 'secret', type: 'never' }]),
      plugin('b', [], [{ name: 'wave' }]),
    ]);
    expect(offered.map((o) => [o.spec.name, o.actionName])).toEqual([
      ['a.wave', 'wave'],
      ['weather', 'weather'],
      ['b.wave', 'wave'],
    ]);
  });
});
