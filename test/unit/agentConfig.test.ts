import {
  AgentConfig,
  AgentConfigPatch,
  applyAgentConfigPatch,
  hasPlaintextSecrets,
  mapSealedSecrets,
  maskAgentConfig,
  sealAgentSecrets,
  type SecretSealer,
} from '../../src/domain/agentConfig';

/** A transparent sealer: enough to see what would be stored, and that the API only seals. */
const sealer: SecretSealer = {
  encrypt: (plaintext) => `v1:sealed:${Buffer.from(plaintext).toString('hex')}:x`,
};
const LLM = { provider: 'openai', base_url: 'https://llm.example/v1', models: ['m'] };
const HOOK = { webhook_url: 'https://hooks.example/maihive' };

function write(stored: AgentConfig, patch: unknown): AgentConfig {
  return applyAgentConfigPatch(stored, AgentConfigPatch.parse(patch), sealer);
}

describe('agent config secrets', () => {
  it('stores a new LLM API key only sealed', () => {
    const config = write(AgentConfig.parse({}), { llm: { ...LLM, api_key: 'sk-new' } });
    expect(config.llm?.api_key).toBeUndefined();
    expect(config.llm?.api_key_encrypted).toBe(sealer.encrypt('sk-new'));
    expect(JSON.stringify(config)).not.toContain('sk-new');
  });

  it('keeps the sealed key when the write sends *** or leaves the key out, replaces it with a new one', () => {
    const stored = write(AgentConfig.parse({}), { llm: { ...LLM, api_key: 'sk-1' } });
    expect(write(stored, { llm: { ...LLM, api_key: '***' } }).llm?.api_key_encrypted).toBe(
      sealer.encrypt('sk-1'),
    );
    expect(write(stored, { llm: { ...LLM, temperature: 0.1 } }).llm).toMatchObject({
      temperature: 0.1,
      api_key_encrypted: sealer.encrypt('sk-1'),
    });
    expect(write(stored, { llm: { ...LLM, api_key: 'sk-2' } }).llm?.api_key_encrypted).toBe(
      sealer.encrypt('sk-2'),
    );
    expect(write(stored, { llm: null }).llm).toBeUndefined();
  });

  it('seals a key stored in plaintext by an older version, on any write that keeps it', () => {
    const legacy = AgentConfig.parse({ llm: { ...LLM, api_key: 'sk-old' } });
    expect(hasPlaintextSecrets(legacy)).toBe(true);
    const sealed = sealAgentSecrets(legacy, sealer);
    expect(hasPlaintextSecrets(sealed)).toBe(false);
    expect(sealed.llm).toEqual({ ...LLM, api_key_encrypted: sealer.encrypt('sk-old') });
    expect(write(legacy, { persona: 'calm' }).llm?.api_key_encrypted).toBe(sealer.encrypt('sk-old'));
    expect(sealAgentSecrets(sealed, sealer)).toBe(sealed);
  });

  it('masks a key in either form as *** and never shows the ciphertext', () => {
    const sealed = write(AgentConfig.parse({}), { llm: { ...LLM, api_key: 'sk-1' } });
    const legacy = AgentConfig.parse({ llm: { ...LLM, api_key: 'sk-old' } });
    for (const config of [sealed, legacy]) {
      const masked = maskAgentConfig(config);
      expect(masked.llm).toEqual({ ...LLM, api_key: '***' });
    }
    expect(maskAgentConfig(AgentConfig.parse({ llm: LLM })).llm).toEqual(LLM);
  });

  it('does not let a write set the sealed form directly', () => {
    expect(AgentConfigPatch.safeParse({ llm: { ...LLM, api_key_encrypted: 'v1:a:b:c' } }).success).toBe(
      false,
    );
    expect(
      AgentConfigPatch.safeParse({ delivery: { ...HOOK, webhook_secret_encrypted: 'v1:a:b:c' } }).success,
    ).toBe(false);
  });
});

describe('agent webhook secrets', () => {
  it('stores a new webhook secret only sealed', () => {
    const config = write(AgentConfig.parse({}), { delivery: { ...HOOK, webhook_secret: 'whsec-new' } });
    expect(config.delivery).toEqual({ ...HOOK, webhook_secret_encrypted: sealer.encrypt('whsec-new') });
    expect(JSON.stringify(config)).not.toContain('whsec-new');
  });

  it('keeps the sealed secret on *** or omission, replaces it with a new one, drops it with delivery: null', () => {
    const stored = write(AgentConfig.parse({}), { delivery: { ...HOOK, webhook_secret: 'whsec-1' } });
    const sealed = sealer.encrypt('whsec-1');
    expect(write(stored, { delivery: { ...HOOK, webhook_secret: '***' } }).delivery).toEqual({
      ...HOOK,
      webhook_secret_encrypted: sealed,
    });
    expect(write(stored, { delivery: { webhook_url: 'https://other.example/h' } }).delivery).toEqual({
      webhook_url: 'https://other.example/h',
      webhook_secret_encrypted: sealed,
    });
    expect(write(stored, { delivery: { ...HOOK, webhook_secret: 'whsec-2' } }).delivery).toEqual({
      ...HOOK,
      webhook_secret_encrypted: sealer.encrypt('whsec-2'),
    });
    expect(write(stored, { persona: 'calm' }).delivery?.webhook_secret_encrypted).toBe(sealed);
    expect(write(stored, { delivery: null }).delivery).toBeUndefined();
  });

  it('seals a webhook secret stored in plaintext by an older version, beside an LLM key', () => {
    const legacy = AgentConfig.parse({
      llm: { ...LLM, api_key: 'sk-old' },
      delivery: { ...HOOK, webhook_secret: 'whsec-old' },
    });
    expect(hasPlaintextSecrets(legacy)).toBe(true);
    const sealed = sealAgentSecrets(legacy, sealer);
    expect(hasPlaintextSecrets(sealed)).toBe(false);
    expect(sealed.delivery).toEqual({ ...HOOK, webhook_secret_encrypted: sealer.encrypt('whsec-old') });
    expect(sealed.llm).toEqual({ ...LLM, api_key_encrypted: sealer.encrypt('sk-old') });
    expect(sealAgentSecrets(sealed, sealer)).toBe(sealed);
    const onlyHook = AgentConfig.parse({ delivery: { ...HOOK, webhook_secret: 'whsec-old' } });
    expect(hasPlaintextSecrets(onlyHook)).toBe(true);
    expect(write(onlyHook, { persona: 'calm' }).delivery?.webhook_secret_encrypted).toBe(
      sealer.encrypt('whsec-old'),
    );
  });

  it('masks a webhook secret in either form as *** and never shows the ciphertext', () => {
    const sealed = write(AgentConfig.parse({}), { delivery: { ...HOOK, webhook_secret: 'whsec-1' } });
    const legacy = AgentConfig.parse({ delivery: { ...HOOK, webhook_secret: 'whsec-old' } });
    for (const config of [sealed, legacy]) {
      expect(maskAgentConfig(config).delivery).toEqual({ ...HOOK, webhook_secret: '***' });
    }
    expect(maskAgentConfig(AgentConfig.parse({ delivery: HOOK })).delivery).toEqual(HOOK);
  });

  it('re-seals sealed secrets with mapSealedSecrets, leaving the config as is when nothing changes', () => {
    const config = write(AgentConfig.parse({}), {
      llm: { ...LLM, api_key: 'sk-1' },
      delivery: { ...HOOK, webhook_secret: 'whsec-1' },
    });
    expect(mapSealedSecrets(config, () => undefined)).toBe(config);
    const seen: string[] = [];
    const resealed = mapSealedSecrets(config, (s) => {
      seen.push(s);
      return `${s}-new`;
    });
    expect(seen).toEqual([sealer.encrypt('sk-1'), sealer.encrypt('whsec-1')]);
    expect(resealed.delivery?.webhook_secret_encrypted).toBe(`${sealer.encrypt('whsec-1')}-new`);
    expect(resealed.llm?.api_key_encrypted).toBe(`${sealer.encrypt('sk-1')}-new`);
  });
});
