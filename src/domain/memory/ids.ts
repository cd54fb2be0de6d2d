import { createHash } from 'node:crypto';

/**
 * A memory id derived from what the memory is, so that storing it again (a retried or duplicate
 * job, the same fact said twice) hits the same primary key. With a source time: `mem_` + the time
 * in base36 (the fixed-width, time-sortable shape of `newId('mem')`) + 14 characters of a SHA-256
 * over the parts; without one (a fact, whenever it was said): `mem_` + 23 hash characters. The
 * parts must name everything that makes two memories different (agent, scope, stream, type,
 * normalised content or source message range).
 */
export function deterministicMemoryId(parts: readonly string[], sourceAtMs?: number): string {
  const hash = createHash('sha256').update(parts.join('\u0000')).digest('base64url');
  if (sourceAtMs === undefined) return `mem_${hash.slice(0, 23)}`;
  const time = Math.max(0, Math.trunc(sourceAtMs)).toString(36).padStart(9, '0');
  return `mem_${time}${hash.slice(0, 14)}`;
}
