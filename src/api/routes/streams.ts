import type { RouteContext } from './context';

export function streamsRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
