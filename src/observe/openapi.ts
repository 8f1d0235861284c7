import type { OpenAPIHono } from "@hono/zod-openapi";
import { TaskBatchItem } from "../tasks/schema";
import type { AppEnv } from "../http/types";

/** Serves the OpenAPI 3.1 document generated from the same zod schemas that validate requests. */
export function mountOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  // Bulk items are validated one by one, so the route's schema cannot reference this one itself.
  app.openAPIRegistry.register("TaskBatchItem", TaskBatchItem);
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Taskflare",
      version: "1.0.0",
      description: "Job scheduler, background-task runner and health service in one Cloudflare Worker.",
    },
    security: [{ bearer: [] }],
  });
}
