import { detectEmotion, isLowEffort } from '../../src/domain/heartflow/emotion';
import { interestOf, keywordsOf } from '../../src/domain/heartflow/interest';

describe('interestOf', () => {
  it('scores nothing for empty text unless the bot is mentioned', () => {
    expect(interestOf('   ')).toBe(0);
    expect(interestOf('', { mentioned: true })).toBe(0.4);
  });

  it('rates a question above a statement of the same length', () => {
    expect(interestOf('今天吃什么')).toBeGreaterThan(interestOf('今天吃面条') + 0.15);
    expect(interestOf('how does this work')).toBeGreaterThan(interestOf('this does work fine'));
  });

  it('grows with length up to a cap', () => {
    expect(interestOf('好'.repeat(40) + '看')).toBeGreaterThan(interestOf('好看'));
    expect(interestOf('字'.repeat(80))).toBeCloseTo(interestOf('字'.repeat(500)), 10);
  });

  it('rises with words shared with what the bot said recently', () => {
    const context = { recentBotMessages: ['我最喜欢吃火锅了，尤其是麻辣的'] };
    expect(interestOf('火锅麻辣的好吃', context)).toBeGreaterThan(interestOf('火锅麻辣的好吃') + 0.25);
    expect(
      interestOf('I love TypeScript generics', { recentBotMessages: ['TypeScript generics rock'] }),
    ).toBeCloseTo(interestOf('I love TypeScript generics') + 0.2, 10);
  });

  it('adds 0.4 for a mention and caps at 1', () => {
    expect(interestOf('在吗', { mentioned: true }) - interestOf('在吗')).toBeCloseTo(0.4, 10);
    const all = { mentioned: true, recentBotMessages: ['火锅真好吃'] };
    expect(interestOf('火锅为什么这么好吃？哈哈' + '字'.repeat(100), all)).toBe(1);
  });

  it('halves low-effort chatter and weighs emotion by sensitivity', () => {
    expect(interestOf('哈哈哈哈')).toBeLessThan(0.1);
    expect(interestOf('太好了', { emotionSensitivity: 1 })).toBeGreaterThan(
      interestOf('太好了', { emotionSensitivity: 0 }) + 0.15,
    );
  });

  it('is deterministic', () => {
    const text = '大家觉得 TypeScript 的类型体操有意思吗？';
    expect(interestOf(text, { recentBotMessages: ['类型体操'] })).toBe(
      interestOf(text, { recentBotMessages: ['类型体操'] }),
    );
  });
});

describe('keywordsOf', () => {
  it('splits Chinese into bigrams and English into words, dropping very common ones', () => {
    expect([...keywordsOf('我们吃火锅 TypeScript and Go')].sort()).toEqual(
      ['吃火', '火锅', '们吃', 'typescript'].sort(),
    );
  });
});

describe('emotion cues', () => {
  it('names the emotion of a message', () => {
    expect(detectEmotion('哈哈哈笑死我了')).toBe('happy');
    expect(detectEmotion('呜呜呜好难过')).toBe('sad');
    expect(detectEmotion('气死我了')).toBe('angry');
    expect(detectEmotion('卧槽真的假的')).toBe('surprised');
    expect(detectEmotion('今天开会')).toBeUndefined();
  });

  it('knows low-effort chatter', () => {
    for (const t of ['哈哈哈', 'hhhh', '2333', '嗯嗯', 'ok', '😂😂', '[表情]'])
      expect(isLowEffort(t)).toBe(true);
    for (const t of ['哈哈哈你说得对', '今天吃什么', '']) expect(isLowEffort(t)).toBe(false);
  });
});
