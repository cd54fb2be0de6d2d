import type { RouteContext } from './context';

export function tenantsRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
