/** The roles a credential can carry (API.md § Identity, roles and the isolation context); stored on users and API keys. */
export const ROLES = ['platform_admin', 'tenant_admin', 'operator', 'agent', 'reader'] as const;
export type Role = (typeof ROLES)[number];
/** The roles of a tenant's own users and keys. */
export type TenantRole = Exclude<Role, 'platform_admin'>;
