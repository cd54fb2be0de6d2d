import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

import { errorResponse, successEnvelope } from './openapiOperation';

/** The API's sections (API.md), in the order the docs page lists them. */
const TAGS = [
  { name: 'Base', description: 'Health, readiness, metrics and what this installation is.' },
  { name: 'Auth', description: 'Logins, tokens and API keys.' },
  { name: 'Tenants', description: 'Tenants, their users, settings and statistics.' },
  { name: 'Agents', description: "A tenant's bots: persona, LLM settings and bot accounts." },
  { name: 'Chat', description: 'Sending messages, their status and history, chat streams and live events.' },
  { name: 'Memory', description: 'What the bots remember: storing, searching and curating memories.' },
  { name: 'Emoji', description: 'Emoji packs (Unicode and images), sending by emotion, usage statistics.' },
  { name: 'Plugins', description: 'Plugins a tenant installs, enables, configures and runs.' },
  { name: 'Adapters', description: 'OneBot v11 (NapCat) and maim_message entry points.' },
  {
    name: 'Configuration',
    description: 'Configuration by category at tenant, agent, platform and chat scope; history and reset.',
  },
  {
    name: 'Heartflow',
    description: "A chat's heartflow: process a message, its state, settings and analysis.",
  },
  {
    name: 'Statistics',
    description: 'Usage and cost per tenant, API and queue performance, the status page.',
  },
  { name: 'Queue administration', description: "Operators' view of each tenant's queues and jobs." },
] as const;

const componentStatus = z.enum(['healthy', 'unhealthy']);

/** The routes served outside `route()` (not enveloped, or before the authenticator). */
function registerBasePaths(registry: OpenAPIRegistry): void {
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/health',
    operationId: 'getHealth',
    summary: 'Liveness with the state of PostgreSQL and Redis',
    tags: ['Base'],
    security: [],
    responses: {
      200: {
        description: 'healthy',
        content: {
          'application/json': {
            schema: successEnvelope(
              z.object({
                status: z.enum(['healthy', 'unhealthy']),
                version: z.string(),
                uptime: z.number().describe('seconds'),
                components: z.object({
                  database: componentStatus,
                  redis: componentStatus,
                  llm_service: componentStatus,
                }),
              }),
            ),
          },
        },
      },
      503: errorResponse(503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/ready',
    operationId: 'getReady',
    summary: 'Readiness: migrations applied, PostgreSQL and Redis answering',
    tags: ['Base'],
    security: [],
    responses: {
      200: {
        description: 'ready',
        content: {
          'application/json': {
            schema: successEnvelope(
              z.object({ ready: z.boolean(), migrations: z.string(), redis: componentStatus }),
            ),
          },
        },
      },
      503: errorResponse(503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics (text exposition format, not enveloped)',
    description: "Needs `Authorization: Bearer <METRICS_TOKEN>` or a platform admin's credentials.",
    tags: ['Base'],
    security: [{ bearer: [] }],
    responses: {
      200: { description: 'Prometheus text', content: { 'text/plain': { schema: z.string() } } },
      401: errorResponse(401),
      403: errorResponse(403),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This document',
    tags: ['Base'],
    security: [],
    responses: {
      200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: z.object({}) } } },
      304: { description: 'Not modified (`If-None-Match` named the current ETag)' },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/auth/jwks.json',
    operationId: 'getJwks',
    summary: 'Public keys verifying access tokens (JWKS, not enveloped; empty with HS256)',
    tags: ['Auth'],
    security: [],
    responses: {
      200: {
        description: 'JWK set',
        content: {
          'application/json': { schema: z.object({ keys: z.array(z.record(z.string(), z.string())) }) },
        },
      },
    },
  });
}

/** A registry with the base paths and security schemes; routes add themselves with `route()`. */
export function createOpenApiRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registerBasePaths(registry);
  return registry;
}

/** The OpenAPI 3.1 document of everything registered, as served at `/api/v1/openapi.json`. */
export function generateOpenApiDocument(registry: OpenAPIRegistry, version: string) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'MaiHive API',
      version,
      description:
        'Multi-tenant message backend for MaiBot-family chat bots. Every answer is an envelope ' +
        '(`success`, `data` or `error`, `timestamp`, `request_id`); the tenant always comes from the credential.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/' }],
    tags: [...TAGS],
  });
}
