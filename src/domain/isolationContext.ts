import { type FieldIssue, ValidationError } from '../errors';

/** Client-chosen identifiers (tenant, agent, platform, chat stream, …), per API.md § Conventions. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export type IsolationLevel = 'T' | 'T+A' | 'T+A+P' | 'T+A+C+P';

export interface IsolationContextInput {
  tenantId: string;
  agentId?: string | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
}

/**
 * Who a unit of work acts for: tenant, and optionally agent, platform and chat stream (T+A+C+P).
 * Built once per request or job from the credential, validated at construction, frozen.
 */
export interface IsolationContext {
  readonly tenantId: string;
  readonly agentId: string | undefined;
  readonly platform: string | undefined;
  readonly chatStreamId: string | undefined;
  readonly level: IsolationLevel;
  /** Stable, unambiguous key fragment (`/` never occurs in identifiers), e.g. `acme/bot1/qq/chat_1`. */
  readonly scope: string;
}

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER_PATTERN.test(value);
}

const FIELDS = [
  ['tenantId', 'tenant_id'],
  ['agentId', 'agent_id'],
  ['platform', 'platform'],
  ['chatStreamId', 'chat_stream_id'],
] as const;

export function createIsolationContext(input: IsolationContextInput): IsolationContext {
  const issues: FieldIssue[] = [];
  for (const [key, name] of FIELDS) {
    const value: unknown = input[key];
    const required = key === 'tenantId';
    if (value === undefined && !required) continue;
    if (!isIdentifier(value)) {
      issues.push({ path: name, issue: `must match ${IDENTIFIER_PATTERN.source}` });
    }
  }
  const { tenantId, agentId, platform, chatStreamId } = input;
  // Each dimension narrows the one before it: a platform without an agent, or a chat stream
  // without a platform, names no valid level.
  if (platform !== undefined && agentId === undefined) {
    issues.push({ path: 'platform', issue: 'a platform needs an agent_id (level T+A+P)' });
  }
  if (chatStreamId !== undefined && platform === undefined) {
    issues.push({
      path: 'chat_stream_id',
      issue: 'a chat stream needs an agent_id and a platform (level T+A+C+P)',
    });
  }
  if (issues.length > 0) throw new ValidationError('invalid isolation context', issues);

  const parts = [tenantId, agentId, platform, chatStreamId].filter((p): p is string => p !== undefined);
  const level = (['T', 'T+A', 'T+A+P', 'T+A+C+P'] as const)[parts.length - 1] ?? 'T';
  return Object.freeze({ tenantId, agentId, platform, chatStreamId, level, scope: parts.join('/') });
}

/** A context at the full T+A+C+P level: one chat stream of one agent on one platform. */
export interface ChatStreamContext extends IsolationContext {
  readonly agentId: string;
  readonly platform: string;
  readonly chatStreamId: string;
  readonly level: 'T+A+C+P';
}

/** `createIsolationContext` with every dimension given, typed as the full scope it then is. */
export function createChatStreamContext(input: {
  tenantId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
}): ChatStreamContext {
  // All four present and validated: the level is T+A+C+P and none of them is undefined.
  return createIsolationContext(input) as ChatStreamContext;
}

/** A context narrowed further (e.g. a tenant credential selecting an agent); the result is validated anew. */
export function narrowContext(
  ctx: IsolationContext,
  more: Omit<IsolationContextInput, 'tenantId'>,
): IsolationContext {
  return createIsolationContext({
    tenantId: ctx.tenantId,
    agentId: more.agentId ?? ctx.agentId,
    platform: more.platform ?? ctx.platform,
    chatStreamId: more.chatStreamId ?? ctx.chatStreamId,
  });
}
