import { createRoute, z } from "@hono/zod-openapi";
import { openApiApp } from "../http/openapi-app";
import { readinessChecks } from "./probes";
import { runHealthChecks } from "./runner";

const HEALTH_JSON = "application/health+json";
const Status = z.enum(["pass", "warn", "fail"]);

/** The readiness report, in the IETF health-check draft's format. */
const Readiness = z
  .object({
    status: Status,
    serviceId: z.string(),
    checks: z.record(
      z.string(),
      z.array(
        z.object({
          componentName: z.string(),
          status: Status,
          time: z.string(),
          observedValue: z.union([z.number(), z.string(), z.boolean()]).optional(),
          observedUnit: z.string().optional(),
          output: z.string().optional(),
        }),
      ),
    ),
  })
  .openapi("Readiness");

const liveness = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["health"],
  summary: "Liveness: this isolate answers (no dependency, no auth; HEAD too)",
  security: [],
  responses: { 200: { description: "Alive", content: { "application/json": { schema: z.object({ status: z.literal("pass") }) } } } },
});

const readiness = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["health"],
  summary: "Readiness: D1, queue bindings, a Durable Object, configuration and the scheduler heartbeat",
  security: [],
  request: {
    query: z.object({
      // Anything but "1" is plain, as before: a probe's query must not turn readiness into a 400.
      verbose: z
        .literal("1")
        .optional()
        .catch(undefined)
        .openapi({ type: "string", enum: ["1"], description: "1 also lists jobs past their success deadline" }),
    }),
  },
  responses: {
    200: { description: "Ready (pass or warn)", content: { [HEALTH_JSON]: { schema: Readiness } } },
    503: { description: "Not ready: a critical check failed", content: { [HEALTH_JSON]: { schema: Readiness } } },
  },
});

/** Liveness and readiness probes: public, outside /v1. */
export const healthRoutes = openApiApp()
  // Liveness touches no dependency: it says only that this isolate answers.
  .openapi(liveness, (c) => {
    c.header("cache-control", "no-store");
    return c.json({ status: "pass" as const }, 200);
  })
  .openapi(readiness, async (c) => {
    const report = await runHealthChecks(readinessChecks(c.env, Date.now, c.req.valid("query").verbose === "1"));
    const body = { status: report.status, serviceId: "taskflare", checks: report.checks };
    const headers = { "Content-Type": HEALTH_JSON, "cache-control": "no-store" };
    return report.status === "fail" ? c.json(body, 503, headers) : c.json(body, 200, headers);
  });

// Hono answers HEAD with the GET handler; the document says so too.
healthRoutes.openAPIRegistry.registerPath({ ...liveness, method: "head", responses: { 200: { description: "Alive" } } });
