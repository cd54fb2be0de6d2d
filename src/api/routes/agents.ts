import type { RouteContext } from './context';

export function agentsRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
