import { Hono } from "hono";
import type { AppEnv } from "../http/types";
import { readinessChecks } from "./probes";
import { runHealthChecks } from "./runner";

/** Liveness and readiness probes: public, outside /v1. */
export const healthRoutes = new Hono<AppEnv>();

// Liveness touches no dependency: it says only that this isolate answers.
healthRoutes.on(["GET", "HEAD"], "/healthz", (c) => {
  c.header("cache-control", "no-store");
  return c.json({ status: "pass" });
});

healthRoutes.get("/readyz", async (c) => {
  const verbose = c.req.query("verbose") === "1";
  const report = await runHealthChecks(readinessChecks(c.env, Date.now, verbose));
  const body = { status: report.status, serviceId: "taskflare", checks: report.checks };
  return new Response(JSON.stringify(body), {
    status: report.status === "fail" ? 503 : 200,
    headers: { "content-type": "application/health+json", "cache-control": "no-store" },
  });
});
