import type { HeartflowJobData } from '../../src/queues/tenantQueues';
import type { TestApp } from './testApp';

/** Arrange steps outside tests cannot use expect: a failed setup throws instead. */
export function created<T extends { status: number; body: unknown }>(res: T): T {
  if (res.status !== 201) throw new Error(`setup request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/** A heartflow job's payload as the ingress would enqueue it (a group message, no mention). */
export function heartflowJobData(
  tenantId: string,
  messageId: string,
  over: Partial<HeartflowJobData> = {},
): HeartflowJobData {
  return {
    messageId,
    tenantId,
    agentId: 'default',
    platform: 'qq',
    chatStreamId: 'c1',
    chatType: 'group',
    content: 'hello',
    clientMessageId: null,
    replyTo: null,
    sender: { userId: 'u1', nickname: null, cardname: null, groupId: null, groupName: null },
    segments: [],
    mentioned: false,
    options: { enableMemory: true, enableEmoji: true, priority: 'normal' },
    receivedAt: Date.now(),
    source: 'http',
    ...over,
  };
}

/** Creates each tenant (named after its id) as a platform admin of `app`. */
export async function createTenants(app: TestApp, tenantIds: readonly string[]): Promise<void> {
  const token = await app.tokenFor({ role: 'platform_admin' });
  for (const tenantId of tenantIds) {
    created(await app.request('POST', '/tenants', { token, body: { tenant_id: tenantId, name: tenantId } }));
  }
}
