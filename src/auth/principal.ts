import { type Role, ROLES } from '../domain/roles';

/** Role groups used by route declarations. */
export const ANY_ROLE: readonly Role[] = ROLES;
export const TENANT_MEMBERS: readonly Role[] = [
  'platform_admin',
  'tenant_admin',
  'operator',
  'agent',
  'reader',
];
export const TENANT_WRITERS: readonly Role[] = ['platform_admin', 'tenant_admin'];
export const SENDERS: readonly Role[] = ['platform_admin', 'tenant_admin', 'operator', 'agent'];

/** Who is calling, as established from the credential (never from the body). */
export interface Principal {
  readonly kind: 'user' | 'platform_admin' | 'api_key' | 'legacy_anonymous';
  /** Username, or key id for API keys. */
  readonly subject: string;
  readonly role: Role;
  /** The tenant the credential is bound to; undefined only for platform admins. */
  readonly tenantId: string | undefined;
  /** Agent the credential is bound to (agent-bound API keys and tokens). */
  readonly agentId: string | undefined;
  /** JWT id of the access token, when authenticated by token. */
  readonly tokenId?: string;
  /** Refresh-token family the access token was issued in. */
  readonly familyId?: string;
  /** Access-token expiry, seconds since the epoch. */
  readonly expiresAt?: number;
}

/** Permissions reported by `/auth/me` and login, derived from the role. */
export function permissionsOf(role: Role): string[] {
  switch (role) {
    case 'platform_admin':
      return ['platform:admin', 'tenant:admin', 'read', 'write', 'queue:manage'];
    case 'tenant_admin':
      return ['tenant:admin', 'read', 'write', 'queue:manage'];
    case 'operator':
      return ['read', 'queue:manage', 'chat:send'];
    case 'agent':
      return ['chat:send', 'chat:read', 'memory:read'];
    case 'reader':
      return ['read'];
  }
}
