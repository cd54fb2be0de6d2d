import { Writable } from 'node:stream';

import { createLogger } from '../../src/logger';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ destination }), lines };
}

describe('logger', () => {
  it('redacts credentials in request headers', () => {
    const { logger, lines } = capture();
    logger.info(
      { req: { headers: { authorization: 'Bearer secret-jwt', 'x-api-key': 'mhk_secret' } } },
      'request',
    );
    const out = lines.join('');
    expect(out).not.toContain('secret-jwt');
    expect(out).not.toContain('mhk_secret');
    expect(out).toContain('[redacted]');
  });

  it('redacts passwords, tokens and LLM keys nested one level down', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        body: { password: 'hunter2', refresh_token: 'rt-123', api_key: 'sk-live' },
        llm: { llm_api_key: 'sk-x' },
      },
      'login',
    );
    const out = lines.join('');
    for (const secret of ['hunter2', 'rt-123', 'sk-live', 'sk-x']) expect(out).not.toContain(secret);
  });

  it('keeps ordinary fields', () => {
    const { logger, lines } = capture();
    logger.info({ tenant_id: 'acme', agent_id: 'bot' }, 'fixed message');
    expect(JSON.parse(lines[0]!)).toMatchObject({ tenant_id: 'acme', agent_id: 'bot', msg: 'fixed message' });
  });
});
