/**
 * What an uploaded emoji image is, from its first bytes: the four formats chat platforms show
 * inline. The declared type of an upload is never trusted; anything else is refused.
 */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';

/** Largest emoji image, bytes (after base64 decoding). */
export const MAX_EMOJI_IMAGE_BYTES = 512 * 1024;

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean {
  return prefix.every((b, i) => bytes[offset + i] === b);
}

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

/** The format the bytes are, or undefined when they are none of the four. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG)) return 'png';
  if (startsWith(bytes, JPEG)) return 'jpeg';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (bytes.length >= 12 && startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8))
    return 'webp';
  return undefined;
}

export const MEDIA_TYPES: Record<ImageFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
};

/** Strict base64 (optionally a `data:image/...;base64,` URL): undefined for anything else. */
export function decodeBase64Image(value: string): Buffer | undefined {
  const payload = value.replace(/^data:[\w/+.-]+;base64,/, '').replace(/\s+/g, '');
  if (payload.length === 0 || payload.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(payload)) {
    return undefined;
  }
  return Buffer.from(payload, 'base64');
}

/** Why an image is refused, or undefined when it is accepted (with its format). */
export function checkEmojiImage(
  bytes: Uint8Array,
): { ok: true; format: ImageFormat } | { ok: false; issue: string } {
  if (bytes.length > MAX_EMOJI_IMAGE_BYTES) {
    return { ok: false, issue: `image is ${bytes.length} bytes; at most ${MAX_EMOJI_IMAGE_BYTES} (512 KiB)` };
  }
  const format = sniffImageFormat(bytes);
  if (!format) return { ok: false, issue: 'not a PNG, JPEG, GIF or WebP image' };
  return { ok: true, format };
}
