/**
 * The tenant content policy (config category `content_policy`, on by default): rejects messages
 * carrying markup or SQL-injection shapes. Messages are only ever bound as query parameters and
 * never rendered as HTML by MaiHive, so this is defence in depth for downstream consumers (web
 * dashboards, bots that echo text into other systems), not what keeps the database safe.
 *
 * The rules look for *shapes* (a tag of a real HTML element, a quote that breaks out and adds a
 * tautology, a statement stacked after `;`), not for words: ordinary chat that mentions `select`,
 * `drop table tennis`, `<3`, `I'd like` or Java generics must pass. Pure and deterministic.
 */

export interface PolicyViolation {
  /** Stable rule name, returned to clients in `details.rule`. */
  rule: 'markup' | 'script_url' | 'sql_injection';
  /** Human-readable reason. */
  description: string;
}

// Element names a browser would act on; `List<String>` or `<T>` are not among them.
const HTML_ELEMENTS = [
  'a', 'abbr', 'applet', 'area', 'audio', 'b', 'base', 'basefont', 'bgsound', 'blink', 'blockquote', 'body',
  'br', 'button', 'canvas', 'center', 'code', 'details', 'dialog', 'div', 'em', 'embed', 'font', 'form',
  'frame', 'frameset', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'head', 'hr', 'html', 'i', 'iframe', 'ilayer',
  'image', 'img', 'input', 'isindex', 'keygen', 'label', 'layer', 'li', 'link', 'listing', 'marquee', 'math',
  'meta', 'noembed', 'noframes', 'noscript', 'object', 'ol', 'option', 'p', 'param', 'plaintext', 'portal',
  'pre', 'script', 'section', 'select', 'source', 'span', 'strong', 'style', 'sub', 'summary', 'sup', 'svg',
  'table', 'tbody', 'td', 'template', 'textarea', 'th', 'title', 'tr', 'track', 'u', 'ul', 'video', 'xml',
  'xmp', 'xss',
]; // prettier-ignore

const MARKUP_RULES: RegExp[] = [
  // `<script`, `</script` and friends: refused even when the tag is not closed.
  /<\/?(script|iframe|object|embed|applet|frameset|svg|math|style|link|meta|base)\b/i,
  // A complete tag of a known element: `<b>`, `</div>`, `<img src=x>`, `<br/>`.
  new RegExp(`<\\/?(${HTML_ELEMENTS.join('|')})(\\s[^<>]*)?\\/?>`, 'i'),
  // Any tag-like construct carrying an event handler or a script-bearing attribute.
  /<[a-z][\w:-]*\s[^<>]*\b(on[a-z]+|formaction|srcdoc)\s*=/i,
  // Comments, CDATA and processing instructions smuggle markup past naive filters.
  /<!--|<!\[CDATA\[|<\?(php|xml)\b/i,
];

// A script URL scheme directly followed by code (`javascript:alert(1)`); "I'm learning
// javascript: any tips?" has a space after the colon and passes.
const SCRIPT_URL = /(^|[^a-z])(javascript|vbscript|livescript)\s*:(?=\S)|\bdata\s*:\s*text\/html/i;

// Characters SQL treats as quotes. Typographic quotes are not among them, so "Don’t" never counts.
const Q = '[\'"`]';
// What ends an injected statement: `;`, a comment, or the end of the text.
const END = '\\s*(;|--|#|\\/\\*|$)';
const STACKED = [
  `drop\\s+(table|database|schema|view|index|user|role|function)\\s+(if\\s+exists\\s+)?[\\w."]+(${END}|\\s+cascade)`,
  `delete\\s+from\\s+[\\w."]+(\\s+where\\b|${END})`,
  `truncate\\s+(table\\s+)?[\\w."]+${END}`,
  `insert\\s+into\\s+[\\w."]+\\s*(\\(|values\\b|select\\b)`,
  `update\\s+[\\w."]+\\s+set\\s+[\\w."]+\\s*=`,
  `(alter|create)\\s+(table|user|role|function)\\s+[\\w."]+\\s*(\\(|add\\b|drop\\b|with\\b|rename\\b|${END})`,
  `(grant|revoke)\\s+(all|select|insert|update|delete|usage|execute)\\b[^;]*\\bon\\b`,
  `exec(ute)?\\s*\\(|exec(ute)?\\s+(xp_|sp_|master\\.|immediate\\b)`,
  `shutdown${END}`,
];
const SQL_RULES: RegExp[] = [
  // A statement stacked after `;` that changes data or schema: `'; DROP TABLE messages; --`.
  new RegExp(`;\\s*(${STACKED.join('|')})`, 'i'),
  // A quote that breaks out and adds a tautology: `' OR '1'='1`, `" or 1=1 --`, `' or 'a' like 'a`.
  new RegExp(
    `${Q}\\s*\\)?\\s*((or|and)\\b|\\|\\||&&)\\s*\\(?\\s*${Q}?\\w*${Q}?\\s*(=|<>|!=|<=|>=|<|>|\\blike\\b|\\bis\\b)\\s*${Q}?\\w*`,
    'i',
  ),
  // A quote that closes the string and cuts the statement off: `admin'--`, `x'); --`.
  new RegExp(`${Q}\\s*\\)*\\s*;\\s*(--|#|\\/\\*)|${Q}\\s*\\)*\\s*(--|#)\\s*$`),
  // UNION SELECT in an injection context: after a quote, a parenthesis or a number, or probing
  // with NULL/number column lists. "How does UNION SELECT work?" passes.
  new RegExp(`(${Q}|\\)|\\b\\d+)\\s*union\\s+(all\\s+|distinct\\s+)?select\\b`, 'i'),
  /\bunion\s+(all\s+|distinct\s+)?select\s+(null|\d+|@@|char\s*\(|concat\s*\(|version\s*\(|user\s*\(|database\s*\()/i,
  // Time-based and out-of-band probes.
  new RegExp(`${Q}\\s*(;|\\)|\\bor\\b|\\band\\b|\\|\\|)\\s*(pg_sleep|sleep|benchmark)\\s*\\(`, 'i'),
  /\bwaitfor\s+delay\s+['"]/i,
  /\bxp_cmdshell\b/i,
];

// NUL and zero-width characters (NUL is stripped separately: lint forbids control characters in patterns).
const INVISIBLE = /[\u200b-\u200d\u2060\ufeff]/g;

/** The first rule the text breaks, or undefined when it is acceptable. */
export function findPolicyViolation(text: string): PolicyViolation | undefined {
  // NUL bytes and zero-width characters are stripped first so they cannot split a keyword.
  const normalised = text.replaceAll(String.fromCharCode(0), '').replace(INVISIBLE, '');
  if (MARKUP_RULES.some((rule) => rule.test(normalised))) {
    return { rule: 'markup', description: 'HTML markup is not allowed in messages' };
  }
  if (SCRIPT_URL.test(normalised)) {
    return { rule: 'script_url', description: 'script URLs are not allowed in messages' };
  }
  if (SQL_RULES.some((rule) => rule.test(normalised))) {
    return { rule: 'sql_injection', description: 'the message looks like an SQL injection attempt' };
  }
  return undefined;
}

/**
 * Whether the content policy is on, from the effective `content_policy` category of a chat
 * (`EffectiveConfigReader`: tenant settings' `content_policy`, then agent, platform, chat); only
 * an explicit `enabled: false` turns it off.
 */
export function contentPolicyEnabled(policy: { enabled?: unknown }): boolean {
  return policy.enabled !== false;
}
