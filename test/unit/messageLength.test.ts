import { hasValidMessageLength, MAX_MESSAGE_CHARS } from '../../src/ingress/acceptMessage';

const M = MAX_MESSAGE_CHARS;
const byCodePoints = (text: string) => {
  const n = [...text.trim()].length;
  return n >= 1 && n <= M;
};

describe('message length', () => {
  it.each([
    ['empty', ''],
    ['blank', ' \n\u3000'],
    ['one emoji between spaces', ' 😀 '],
    ['the limit in emoji', '😀'.repeat(M)],
    ['one emoji past the limit', '😀'.repeat(M + 1)],
    ['the limit in ASCII', 'a'.repeat(M)],
    ['one past the limit in ASCII', 'a'.repeat(M + 1)],
    ['far past the limit', 'a'.repeat(3 * M)],
    ['lone surrogates', '\ud800'.repeat(M + 1)],
    ['mixed pairs and lone surrogates', 'x\udc00\ud83d'.repeat(Math.ceil(M / 3))],
    ['a high surrogate at the end', `${'😀'.repeat(M - 1)}\ud83d`],
  ])('counts code points after trimming like [...text] does: %s', (_name, text) => {
    expect(hasValidMessageLength(text)).toBe(byCodePoints(text));
  });
});
