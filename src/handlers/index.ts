import { cleanupRunsHandler } from "./cleanup-runs";
import { httpHandler } from "./http";
import type { Handler } from "./registry";

/** Every handler a job or task can name. Adding one: a file in this folder and a line here. */
export const handlers: readonly Handler[] = [httpHandler, cleanupRunsHandler] as readonly Handler[];

/** Looks a handler up by name. */
export function findHandler(name: string): Handler | undefined {
  return handlers.find((h) => h.name === name);
}
