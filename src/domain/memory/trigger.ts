import { seedFromString } from '../random';
import { looksMemorable } from './statements';

export interface MemoryTrigger {
  /** The message's `options.enable_memory` (default true). */
  enableMemory: boolean;
  /** The inbound messages just handled (one heartflow batch). */
  messages: readonly { messageId: string; content: string }[];
  /**
   * Without a memorable statement, about one batch in this many triggers a job anyway (by a hash
   * of the message ids, so a retried batch decides the same), which is what eventually brings a
   * stream's summary count past its threshold. Default 10.
   */
  sampleEvery?: number;
}

/**
 * Whether the heartflow glue should enqueue a memory job after a batch: at once when a message
 * says something worth remembering ("我喜欢…", "my name is …", "记住…"), otherwise for a
 * deterministic sample of batches. The job itself counts messages since the last summary, so a
 * skipped batch is never lost, only looked at with the next job of the stream.
 */
export function shouldEnqueueMemory(t: MemoryTrigger): boolean {
  if (!t.enableMemory || t.messages.length === 0) return false;
  const every = Math.max(1, Math.trunc(t.sampleEvery ?? 10));
  return t.messages.some((m) => looksMemorable(m.content) || seedFromString(m.messageId) % every === 0);
}
