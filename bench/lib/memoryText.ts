/**
 * Synthetic memory texts for `bench:memory`: Chinese sentences without spaces (10–60 characters),
 * English sentences (6–30 words) and mixed ones, words drawn with a skewed (Zipf-like) frequency
 * so that common terms have long posting lists, as in real chat memories. Each language has ~3,000
 * topic words: ~170 real ones (the most frequent) followed by generated ones (two-character
 * Chinese words, syllable-built English pseudo-words), since real memories name many different
 * things; with the real words alone a two-word query matched a third of a tenant.
 */

const ZH_WORDS = (
  '喜欢 讨厌 朋友 同学 老师 工作 公司 学校 周末 晚上 早上 吃饭 火锅 奶茶 咖啡 绿茶 电影 音乐 游戏 篮球 足球 ' +
  '跑步 健身 旅游 日本 北京 上海 广州 成都 杭州 重庆 生日 结婚 女朋友 男朋友 妈妈 爸爸 哥哥 姐姐 弟弟 妹妹 猫咪 ' +
  '小狗 宠物 过敏 花生 海鲜 辣椒 香菜 面条 米饭 饺子 蛋糕 水果 西瓜 苹果 草莓 手机 电脑 键盘 耳机 相机 汽车 ' +
  '地铁 公交 飞机 火车 考试 考研 作业 论文 毕业 实习 面试 加班 工资 房子 租房 搬家 医院 感冒 发烧 睡觉 失眠 ' +
  '早起 熬夜 唱歌 跳舞 画画 钢琴 吉他 小说 漫画 动漫 追剧 综艺 直播 主播 弹幕 群主 管理员 红包 表情包 聊天 ' +
  '吵架 和好 分手 表白 约会 聚餐 烧烤 啤酒 白酒 抽烟 减肥 增肌 瑜伽 游泳 爬山 钓鱼 下棋 围棋 象棋 麻将 扑克 ' +
  '天气 下雨 下雪 太阳 春天 夏天 秋天 冬天 假期 国庆 春节 中秋 端午 元旦 礼物 快递 外卖 淘宝 京东 拼多多 ' +
  '程序员 设计师 产品经理 医生 护士 律师 警察 司机 厨师 学生 大学 高中 初中 小学 幼儿园 数学 英语 物理 化学 历史'
).split(' ');
const VOCABULARY = 3_000;
const ZH_CHARS = [
  ...'天地人山水火木金土日月风云雨雪花草树林石田车马牛羊鱼鸟虫米面茶酒糖盐肉蛋菜果书笔纸画琴歌舞球票钱店街路桥门窗桌椅床灯衣帽鞋包伞杯碗盘锅刀剪线针布绳',
];
const SYLLABLES = 'ba ko ri ne su ta mi lo de fa gu ha je ku po ze vi wa'.split(' ');

/** The real words first, then generated ones up to `VOCABULARY`, deterministic. */
function extend(real: readonly string[], make: (i: number) => string): string[] {
  const out = new Set(real);
  for (let i = 0; out.size < VOCABULARY; i++) out.add(make(i));
  return [...out];
}
const ZH_VOCABULARY = extend(ZH_WORDS, (i) => {
  const n = ZH_CHARS.length;
  return ZH_CHARS[(i * 37) % n]! + ZH_CHARS[Math.floor(i / n) % n]!;
});
const ZH_GLUE = '的 了 在 是 和 也 都 很 最 不 没 要 去 说 会 想 给 把 被'.split(' ');
const ZH_NAMES = '小明 小红 小刚 小美 阿杰 老王 老李 大伟 小雨 阿飞 秋秋 叶子 白露 老周 小林 阿花'.split(' ');

const EN_WORDS = (
  'like love hate friend work office school weekend night morning dinner lunch coffee tea movie music game ' +
  'basketball football running gym travel japan london paris berlin tokyo birthday wedding girlfriend boyfriend ' +
  'mother father brother sister cat dog pet allergic peanut seafood spicy noodle rice cake fruit apple phone ' +
  'laptop keyboard camera car train plane bus exam study homework thesis graduate intern interview salary house ' +
  'rent move hospital cold fever sleep insomnia sing dance paint piano guitar novel comic anime series show ' +
  'stream chat argue date party barbecue beer wine smoke diet yoga swim hike fish chess poker weather rain snow ' +
  'sun spring summer autumn winter holiday gift parcel delivery shop programmer designer manager doctor nurse ' +
  'lawyer police driver chef student university college math english physics chemistry history garden bike'
).split(' ');
const EN_VOCABULARY = extend(EN_WORDS, (i) => {
  // i written in base 18, one syllable per digit (at least three), then an "n".
  const digits: string[] = [];
  for (let k = i + 18 * 18; k > 0; k = Math.floor(k / 18)) digits.push(SYLLABLES[k % 18]!);
  return `${digits.join('')}n`;
});
const EN_GLUE = 'the a and to of in is was with for on at his her their very really always never'.split(' ');
const EN_NAMES = 'Alice Bob Carol Dave Emma Frank Grace Henry Ivy Jack Kate Leo Mia Noah Olivia Paul'.split(
  ' ',
);

type Rng = () => number;

/** A skewed pick: low indexes far more often (r² puts ~30 % of draws in the first tenth). */
function pick<T>(list: readonly T[], rng: Rng): T {
  return list[Math.floor(rng() * rng() * list.length)]!;
}

function between(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function chineseText(rng: Rng): string {
  const target = between(rng, 10, 60);
  let s = pick(ZH_NAMES, rng);
  while ([...s].length < target) s += (rng() < 0.4 ? pick(ZH_GLUE, rng) : '') + pick(ZH_VOCABULARY, rng);
  return `${s}。`;
}

export function englishText(rng: Rng): string {
  const words = [pick(EN_NAMES, rng)];
  const target = between(rng, 6, 30);
  while (words.length < target) words.push(rng() < 0.35 ? pick(EN_GLUE, rng) : pick(EN_VOCABULARY, rng));
  return `${words.join(' ')}.`;
}

/** 45 % Chinese, 45 % English, 10 % mixed. */
export function memoryText(rng: Rng): string {
  const r = rng();
  if (r < 0.45) return chineseText(rng);
  if (r < 0.9) return englishText(rng);
  return `${chineseText(rng)} ${pick(EN_VOCABULARY, rng)} ${pick(EN_VOCABULARY, rng)}`;
}

/** A query as people type it: two or three topic words (and a name half the time). */
export function chineseQuery(rng: Rng): string {
  const parts = [pick(ZH_VOCABULARY, rng), pick(ZH_VOCABULARY, rng)];
  if (rng() < 0.5) parts.unshift(pick(ZH_NAMES, rng));
  return parts.join('');
}

export function englishQuery(rng: Rng): string {
  const parts = [pick(EN_VOCABULARY, rng), pick(EN_VOCABULARY, rng)];
  if (rng() < 0.5) parts.unshift(pick(EN_NAMES, rng));
  return parts.join(' ');
}
