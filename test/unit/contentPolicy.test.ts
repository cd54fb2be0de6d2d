import { contentPolicyEnabled, findPolicyViolation } from '../../src/ingress/contentPolicy';

describe('content policy', () => {
  it.each([
    "'; DROP TABLE messages; --",
    "' OR '1'='1",
    "' or 1=1 --",
    "admin'--",
    "x'); DELETE FROM users WHERE 1=1; --",
    "1' UNION SELECT username, password FROM users --",
    '-1 UNION SELECT 1,2,3',
    'UNION ALL SELECT NULL, NULL, NULL',
    "1; UPDATE users SET role = 'admin'",
    "'; EXEC xp_cmdshell('dir'); --",
    "' AND SLEEP(5)",
    "'; WAITFOR DELAY '0:0:5' --",
    '" or "a"="a',
  ])('rejects the SQL-injection shape %s', (text) => {
    expect(findPolicyViolation(text)).toMatchObject({ rule: 'sql_injection' });
  });

  it.each([
    "<script>alert('xss')</script>",
    '<SCRIPT SRC=//evil.example/x.js>',
    '<script',
    '<img src=x onerror=alert(1)>',
    '<b>bold</b>',
    '<iframe src="https://evil.example"></iframe>',
    '<svg/onload=alert(1)>',
    '<div class="x">hi</div>',
    '<x onclick="steal()">click</x>',
    '<!-- hidden -->',
    '<scr\u200bipt>alert(1)</script>',
  ])('rejects the markup %s', (text) => {
    expect(findPolicyViolation(text)).toMatchObject({ rule: 'markup' });
  });

  it.each(['javascript:alert(document.cookie)', 'click here: JavaScript:void(0)', 'data:text/html,<b>x'])(
    'rejects the script URL %s',
    (text) => {
      expect(findPolicyViolation(text)).toBeDefined();
    },
  );

  it.each([
    '你好，我想问个问题',
    '测试消息',
    "I'd like a coffee, please",
    "Don't worry, it's fine",
    'I <3 you',
    '>_< so sad <_<',
    'a < b and c > d',
    'if (x<y && y>z) return',
    'List<String> names = new ArrayList<>();',
    'Map<K, V> and Optional<T>',
    'How do I SELECT * FROM users WHERE id = 1?',
    'select the best option for me',
    'SQL question: how does UNION SELECT work?',
    'we played drop table tennis yesterday',
    "I'm learning javascript: any tips?",
    '我在学javascript：有建议吗',
    "rock 'n' roll or jazz?",
    'He said "yes" or "no"',
    "O'Reilly books and manuals",
    'semicolons; delete them from your code',
    'price: 5$ -- cheap!',
    'emoji :) ;-) xD',
    '表情包<(￣︶￣)>',
    'use #hashtags and @mentions',
    'https://example.com/?q=a&b=c',
  ])('accepts ordinary chat %s', (text) => {
    expect(findPolicyViolation(text)).toBeUndefined();
  });

  it('is on unless the effective content_policy config turns it off', () => {
    expect(contentPolicyEnabled({})).toBe(true);
    expect(contentPolicyEnabled({ enabled: true })).toBe(true);
    expect(contentPolicyEnabled({ enabled: false })).toBe(false);
  });
});
