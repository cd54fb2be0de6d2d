import type { RouteContext } from './context';

export function authRoutes(_ctx: RouteContext): void {
  // routes of this section are added here
}
