import { randomBytes } from 'node:crypto';

export type IdPrefix = 'msg' | 'mem' | 'key' | 'job' | 'req' | 'act' | 'rt' | 'fam' | 'emo' | 'at';

/**
 * Server-made identifiers: `<prefix>_<time><random>`. The time part (ms, base36, fixed width) makes
 * ids of one kind sort by creation time, which keeps index inserts local and cursors simple.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${now.toString(36).padStart(9, '0')}${randomBytes(10).toString('base64url')}`;
}
