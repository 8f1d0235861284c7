import type { Hono } from "hono";
import type { AppEnv } from "./types";

interface RoutePattern {
  pattern: RegExp;
  method: string;
}

function compile(path: string): RegExp {
  const escaped = path
    .split("/")
    .map((part) => (part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${escaped}/?$`);
}

/**
 * Hono answers an unmatched method with 404; this lists the methods a path
 * does accept so the not-found handler can answer 405 with `Allow` instead.
 */
export function allowedMethods(app: Hono<AppEnv>): (path: string) => string[] {
  let patterns: RoutePattern[] | undefined;
  return (path) => {
    patterns ??= app.routes.filter((r) => r.method !== "ALL").map((r) => ({ pattern: compile(r.path), method: r.method.toUpperCase() }));
    const methods = new Set(patterns.filter((p) => p.pattern.test(path)).map((p) => p.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}
