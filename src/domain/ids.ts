import { randomFillSync } from 'node:crypto';

export type IdPrefix = 'msg' | 'mem' | 'key' | 'job' | 'req' | 'act' | 'rt' | 'fam' | 'emo' | 'at';

/** Random bytes per id: 80 bits. */
const RANDOM_BYTES = 10;
// Ids are made on every request (request id, message id): one CSPRNG call fills the randomness of
// 400 of them instead of one call (and one small buffer) per id. Each id takes bytes no other id
// takes, so the pool changes what ids cost, not how random they are.
const pool = Buffer.alloc(RANDOM_BYTES * 400);
let offset = pool.length;

function randomPart(): string {
  if (offset + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const part = pool.toString('base64url', offset, offset + RANDOM_BYTES);
  offset += RANDOM_BYTES;
  return part;
}

/**
 * Server-made identifiers: `<prefix>_<time><random>`. The time part (ms, base36, fixed width) makes
 * ids of one kind sort by creation time, which keeps index inserts local and cursors simple.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${now.toString(36).padStart(9, '0')}${randomPart()}`;
}
