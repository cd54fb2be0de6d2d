import type { TenantRole } from '../../api/auth/principal';
import type { TenantDb } from '../database';

export interface ApiKeyRow {
  tenant_id: string;
  key_id: string;
  name: string;
  role: TenantRole;
  agent_id: string | null;
  key_hash: Buffer;
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export async function findApiKey(db: TenantDb, keyId: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE tenant_id = $1 AND key_id = $2', [
    db.ctx.tenantId,
    keyId,
  ]);
  return rows[0];
}
