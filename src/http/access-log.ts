import { createMiddleware } from "hono/factory";
import { log } from "../log";
import type { AppEnv } from "./types";

/** One JSON line per request: method, path, status, duration and request id. */
export const accessLog = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  log(c.res.status >= 500 ? "error" : "info", "http_request", {
    request_id: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
});
