/** Minimal image byte strings for emoji tests: real magic numbers, padded to a size. */
const MAGIC = {
  png: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  jpeg: [0xff, 0xd8, 0xff, 0xe0],
  gif: [...Buffer.from('GIF89a')],
  webp: [...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WEBPVP8 ')],
} as const;

/** An image of the format, `size` bytes long, different for each `seed`. */
export function fakeImage(format: keyof typeof MAGIC, size = 64, seed = 0): Buffer {
  const b = Buffer.alloc(Math.max(size, MAGIC[format].length));
  Buffer.from(MAGIC[format]).copy(b);
  b.writeUInt32BE(seed >>> 0, b.length - 4);
  return b;
}

export function fakeImageBase64(format: keyof typeof MAGIC, size = 64, seed = 0): string {
  return fakeImage(format, size, seed).toString('base64');
}
