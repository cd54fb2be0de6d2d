import type { PluginDefinition } from '../manifest';

const MAX_DICE = 100;
const MAX_SIDES = 1000;

/** `2d6`, `d20`, `3d8+2`, `1d100-5`; undefined for anything else or beyond the limits. */
export function parseDice(spec: string): { count: number; sides: number; modifier: number } | undefined {
  const m = /^(\d{0,3})d(\d{1,4})([+-]\d{1,4})?$/i.exec(spec);
  if (!m) return undefined;
  const count = m[1] === '' ? 1 : Number(m[1]);
  const sides = Number(m[2]);
  if (count < 1 || count > MAX_DICE || sides < 2 || sides > MAX_SIDES) return undefined;
  return { count, sides, modifier: Number(m[3] ?? 0) };
}

/** Dice: `/roll` (one d6) or `/roll 2d6+1`. */
const dice: PluginDefinition = {
  manifest: {
    manifest_version: 1,
    id: 'dice',
    name: '骰子',
    version: '1.0.0',
    description: 'Rolls dice: /roll, /roll 2d6, /roll d20+3',
    author: 'MaiHive',
    categories: ['fun'],
    permissions: ['message_send'],
  },
  commands: [
    {
      command_name: 'roll',
      command_description: 'Roll dice, e.g. /roll 2d6+1 (default one d6)',
      command_pattern: '^[/!](?:roll|r|骰子)(?:\\s+(?<dice>\\S+))?$',
      execute({ args }) {
        const spec = args.dice ?? 'd6';
        const d = parseDice(spec);
        if (!d)
          return {
            reply: `看不懂 ${spec}：用 NdM(+K) 的写法，例如 2d6+1（最多 ${MAX_DICE} 个，${MAX_SIDES} 面）`,
          };
        const rolls = Array.from({ length: d.count }, () => 1 + Math.floor(Math.random() * d.sides));
        const total = rolls.reduce((a, b) => a + b, 0) + d.modifier;
        const mod = d.modifier === 0 ? '' : d.modifier > 0 ? ` + ${d.modifier}` : ` - ${-d.modifier}`;
        const shown = d.count > 1 || mod ? ` (${rolls.join(' + ')}${mod})` : '';
        return { reply: `🎲 ${spec}: ${total}${shown}`, data: { rolls, total } };
      },
    },
  ],
};

export default dice;
