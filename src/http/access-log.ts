import { createMiddleware } from "hono/factory";
import { log } from "../log";
import type { AppEnv } from "./types";

/**
 * Probes that uptime monitors and load balancers hit every few seconds; a
 * line per success would bury the requests people read logs for.
 */
const PROBE_PATHS = new Set(["/healthz", "/readyz"]);

/**
 * One JSON line per request (method, path, status, duration, request id).
 * Failed requests log at info (4xx) or error (5xx); successful ones at debug,
 * since the platform's invocation logs already record every request's method,
 * URL and status. Successful probes are never logged.
 */
export const accessLog = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  const status = c.res.status;
  if (status < 400 && PROBE_PATHS.has(c.req.path)) return;
  log(status >= 500 ? "error" : status >= 400 ? "info" : "debug", "http_request", {
    request_id: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    status,
    duration_ms: Date.now() - started,
  });
});
