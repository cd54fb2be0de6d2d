import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('base endpoints and HTTP conventions', () => {
  it('reports health with every component', async () => {
    const res = await app.request('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.data).toMatchObject({
      status: 'healthy',
      components: { database: 'healthy', redis: 'healthy', llm_service: 'healthy' },
    });
  });

  it('is ready once migrations are applied and the services answer', async () => {
    const res = await app.request('GET', '/ready');
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ ready: true, migrations: 'applied' });
  });

  it('echoes a valid X-Request-Id and replaces an invalid one', async () => {
    const echoed = await app.request('GET', '/health', { headers: { 'x-request-id': 'trace-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('trace-123');
    expect(echoed.body.request_id).toBe('trace-123');
    const replaced = await app.request('GET', '/health', {
      headers: { 'x-request-id': 'bad id with spaces' },
    });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('answers unknown routes with the NOT_FOUND envelope', async () => {
    const res = await app.request('GET', '/no/such/route');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
  });

  it('rejects a non-JSON body with 415', async () => {
    const res = await app.request('POST', '/auth/login', {
      rawBody: 'username=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    expect(res.body.error?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('rejects malformed JSON with a validation error', async () => {
    const res = await app.request('POST', '/auth/login', {
      rawBody: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
  });

  it('rejects a body over MAX_BODY_BYTES with 413', async () => {
    const res = await app.request('POST', '/auth/login', {
      body: { username: 'x'.repeat(1024 * 1024 + 10) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('sets security headers', async () => {
    const res = await app.request('GET', '/health');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('serves an OpenAPI 3 document generated from the route schemas', async () => {
    const res = await fetch(`${app.url}/api/v1/openapi.json`);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(res.status).toBe(200);
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('does not look at credentials on the public base routes', async () => {
    const res = await app.request('GET', '/health', { headers: { authorization: 'Bearer not-a-jwt' } });
    // /health is public and mounted before authentication: credentials are not even looked at.
    expect(res.status).toBe(200);
  });
});
