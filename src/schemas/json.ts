import { z } from "@hono/zod-openapi";

/** Deepest nesting accepted in free-form JSON fields (bodies, handler args, metadata). */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of a JSON value, measured without recursion so hostile input cannot overflow the stack. */
export function jsonDepth(value: unknown, stopAt = MAX_JSON_DEPTH + 1): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() ?? [null, 0];
    if (item === null || typeof item !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest >= stopAt) return deepest;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Any JSON value nested at most MAX_JSON_DEPTH deep. Deeper values are refused
 * with 400: the runtime's structured clone (Durable Object storage, RPC) fails
 * on a few thousand levels, and nothing legitimate needs more than a few dozen.
 */
export const FreeJson = z.unknown().superRefine((value, ctx) => {
  if (jsonDepth(value) > MAX_JSON_DEPTH) ctx.addIssue({ code: "custom", message: `nested deeper than ${MAX_JSON_DEPTH} levels` });
});
