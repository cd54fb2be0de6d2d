/**
 * What a newcomer's browser meets: the API reference page (Swagger UI served from the npm package,
 * nothing from another host) and the pointers at `/` and `/api/v1/`.
 */
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

afterAll(async () => {
  await app.close();
});

const get = (path: string, accept?: string) =>
  fetch(`${app.url}${path}`, accept ? { headers: { accept } } : undefined);

describe('the docs page', () => {
  it('serves Swagger UI over the OpenAPI document, every asset from this server', async () => {
    const page = await get('/api/v1/docs', 'text/html');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref).toMatch(/^\/api\/v1\/docs\//);
      const asset = await get(ref);
      expect({ ref, status: asset.status }).toEqual({ ref, status: 200 });
      expect(asset.headers.get('content-type')).toMatch(/javascript|css/);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    const init = await (await get('/api/v1/docs/init.js')).text();
    expect(init).toContain('"/api/v1/openapi.json"');
    // The page may load nothing from another origin (no CDN, no web fonts).
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('answers 404 with the error envelope for an asset that does not exist', async () => {
    const res = await get('/api/v1/docs/assets/no-such-file.js');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
  });
});

describe('the pointers at / and /api/v1/', () => {
  it.each(['/', '/api/v1', '/api/v1/'])('%s answers JSON clients with where to go', async (path) => {
    const res = await get(path, 'application/json');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      success: true,
      data: {
        docs: '/api/v1/docs',
        openapi: '/api/v1/openapi.json',
        health: '/api/v1/health',
        dashboard: '/api/v1/admin/ui',
      },
    });
  });

  it('answers a browser with a page that links the docs, health and dashboard', async () => {
    const res = await get('/', 'text/html,application/xhtml+xml,*/*;q=0.8');
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    for (const link of ['/api/v1/docs', '/api/v1/health', '/api/v1/admin/ui']) {
      expect(html).toContain(`href="${link}"`);
    }
  });
});
