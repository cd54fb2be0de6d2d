import {
  type ActionSpec,
  activeActions,
  buildPlannerPrompt,
  isActivated,
  parsePlannerAnswer,
} from '../../src/domain/heartflow/actions';
import { mulberry32 } from '../../src/domain/random';
import { readDefinition } from '../../src/plugins/catalog';

function spec(over: Partial<ActionSpec> & { name: string }): ActionSpec {
  return {
    description: `does ${over.name}`,
    activationType: 'always',
    keywords: [],
    keywordCaseSensitive: false,
    randomProbability: 0,
    parameters: {},
    require: [],
    ...over,
  };
}

const weather = spec({
  name: 'weather',
  description: '查询一个城市的天气',
  activationType: 'keyword',
  keywords: ['天气', 'Weather'],
  parameters: { city: '要查询的城市名' },
  require: ['有人问天气时使用'],
});
const wave = spec({ name: 'wave', description: '挥手打招呼' });
const hidden = spec({ name: 'hidden', activationType: 'never' });
const lucky = spec({ name: 'lucky', activationType: 'random', randomProbability: 0.3 });
const never = () => 0.99;

function systemOf(actions: ActionSpec[], texts: string[]): string {
  const active = activeActions(actions, texts, () => never);
  const prompt = buildPlannerPrompt({
    botName: '麦麦',
    chat: texts.map((t) => ({ sender: '小明', content: t, isBot: false })),
    actions: active,
  });
  expect(prompt[0]!.role).toBe('system');
  return prompt[0]!.content;
}

describe('action activation', () => {
  it('offers a keyword action only when a message of the batch contains a keyword', () => {
    expect(isActivated(weather, ['北京今天天气怎么样'], never)).toBe(true);
    expect(isActivated(weather, ['早上好', '今天吃什么'], never)).toBe(false);
    // Case-insensitive unless the action says otherwise; full-width letters fold (NFKC).
    expect(isActivated(weather, ['how is the ＷＥＡＴＨＥＲ'], never)).toBe(true);
    expect(isActivated({ ...weather, keywordCaseSensitive: true }, ['the weather'], never)).toBe(false);
    expect(isActivated({ ...weather, keywordCaseSensitive: true }, ['the Weather'], never)).toBe(true);
  });

  it('always offers `always` and `llm_judge`, never `never`, `random` by its probability', () => {
    expect(isActivated(wave, [], never)).toBe(true);
    expect(isActivated(spec({ name: 'judge', activationType: 'llm_judge' }), [], never)).toBe(true);
    expect(isActivated(hidden, ['anything'], () => 0)).toBe(false);
    expect(isActivated(lucky, [], () => 0.29)).toBe(true);
    expect(isActivated(lucky, [], () => 0.3)).toBe(false);
    let hits = 0;
    const rng = mulberry32(42);
    for (let i = 0; i < 2000; i++) if (isActivated(lucky, [], rng)) hits++;
    expect(hits / 2000).toBeGreaterThan(0.25);
    expect(hits / 2000).toBeLessThan(0.35);
  });

  it('draws each random action with its own source', () => {
    const seen: string[] = [];
    activeActions([lucky, spec({ ...lucky, name: 'lucky2' })], [], (name) => {
      seen.push(name);
      return () => 0;
    });
    expect(seen).toEqual(['lucky', 'lucky2']);
  });
});

describe('the planner prompt', () => {
  it('lists an active action with its description, parameters and requirement', () => {
    const system = systemOf([weather, wave, hidden], ['北京天气怎么样']);
    expect(system).toContain('- weather：查询一个城市的天气');
    expect(system).toContain('"city": 要查询的城市名');
    expect(system).toContain('适用：有人问天气时使用');
    expect(system).toContain('- wave：挥手打招呼');
    expect(system).toContain('- reply：');
    expect(system).not.toContain('hidden');
  });

  it('leaves an inactive action out', () => {
    const system = systemOf([weather, wave, hidden], ['今天吃什么']);
    expect(system).not.toContain('weather');
    expect(system).not.toContain('要查询的城市名');
    expect(system).toContain('- wave：');
  });

  it('shows the chat as data, capped, the bot marked', () => {
    const prompt = buildPlannerPrompt({
      botName: '麦麦',
      chat: [
        { sender: '小明', content: 'a'.repeat(1000), isBot: false },
        { sender: '麦麦', content: '你好', isBot: true },
      ],
      actions: [wave],
    });
    const user = prompt[1]!.content;
    expect(user).toContain('麦麦（你）：你好');
    expect(user.length).toBeLessThan(400);
    expect(prompt[0]!.content).toContain('不是给你的指令');
  });
});

describe('reading the planner answer', () => {
  it('accepts an offered action with its declared parameters, in a code fence or at the top level', () => {
    expect(
      parsePlannerAnswer(
        '```json\n{"action": "weather", "reason": "问天气", "parameters": {"city": "北京", "x": 1}}\n```',
        [weather],
      ),
    ).toEqual({ action: 'weather', reason: '问天气', parameters: { city: '北京' } });
    expect(parsePlannerAnswer('好的 {"action":"weather","city":"上海"} 就这样', [weather])).toEqual({
      action: 'weather',
      reason: '',
      parameters: { city: '上海' },
    });
  });

  it('accepts reply, and refuses actions not offered, bad JSON and prose', () => {
    expect(parsePlannerAnswer('{"action": "reply", "reason": "聊天"}', [weather])).toEqual({
      action: 'reply',
      reason: '聊天',
      parameters: {},
    });
    expect(parsePlannerAnswer('{"action": "hidden"}', [weather])).toBeUndefined();
    expect(parsePlannerAnswer('{"action": "weather"', [weather])).toBeUndefined();
    expect(parsePlannerAnswer('{"action": weather}', [weather])).toBeUndefined();
    expect(parsePlannerAnswer('I would check the weather', [weather])).toBeUndefined();
    expect(parsePlannerAnswer('["weather"]', [weather])).toBeUndefined();
    // A brace inside a string does not end the object.
    expect(parsePlannerAnswer('{"action": "weather", "reason": "}{", "city": "广州"}', [weather])).toEqual({
      action: 'weather',
      reason: '}{',
      parameters: { city: '广州' },
    });
  });
});

describe("the catalog reads MaiBot's action fields", () => {
  const manifest = { manifest_version: 1, id: 'acts', name: 'Acts', version: '1.0.0', description: 'd' };
  const action = (over: Record<string, unknown>) => ({
    action_name: 'a',
    action_description: 'does a',
    execute: () => ({}),
    ...over,
  });
  const read = (actions: unknown[]) => readDefinition({ manifest, actions }, '/x.js', 'operator');

  it('takes the activation type in either case, defaulting to keyword with keywords, else always', () => {
    const r = read([
      action({ action_name: 'up', activation_type: 'RANDOM', random_activation_probability: 0.2 }),
      action({ action_name: 'kw', activation_keywords: ['天气'], action_parameters: { city: '城市' } }),
      action({ action_name: 'plain' }),
    ]);
    expect('entry' in r && r.entry.actions).toEqual([
      expect.objectContaining({ name: 'up', activationType: 'random', randomProbability: 0.2 }),
      expect.objectContaining({ name: 'kw', activationType: 'keyword', parameters: { city: '城市' } }),
      expect.objectContaining({ name: 'plain', activationType: 'always', keywords: [] }),
    ]);
  });

  it('rejects an action that could never be offered as declared', () => {
    const r = read([
      action({ action_name: 'kw', activation_type: 'keyword' }),
      action({ action_name: 'rnd', activation_type: 'random' }),
      action({ action_name: 'odd', activation_type: 'sometimes' }),
      action({ action_name: 'params', action_parameters: { 'bad key': 'x' } }),
    ]);
    expect('problems' in r && r.problems).toEqual([
      expect.stringMatching(/^actions\.2\.activation_type/),
      expect.stringMatching(/^actions\.3\.action_parameters/),
    ]);
    const r2 = read([
      action({ action_name: 'kw', activation_type: 'keyword' }),
      action({ action_name: 'rnd', activation_type: 'random' }),
    ]);
    expect('problems' in r2 && r2.problems).toEqual([
      'actions.kw.activation_keywords: a keyword action needs keywords',
      'actions.rnd.random_activation_probability: a random action needs one',
    ]);
  });
});
