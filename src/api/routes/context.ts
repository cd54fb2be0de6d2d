import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Router } from 'express';

import type { Dependencies } from '../../dependencies';

/** What a route module gets to mount its routes (see `http/route.ts`). */
export interface RouteContext {
  readonly router: Router;
  readonly registry: OpenAPIRegistry;
  readonly deps: Dependencies;
}
