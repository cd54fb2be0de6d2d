import type { RouteContext } from './context';

export function chatRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
