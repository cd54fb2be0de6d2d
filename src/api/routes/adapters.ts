import type { RouteContext } from './context';

export function adaptersRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
