import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../http/types";
import { TaskBatchItem } from "../tasks/schema";
import { docsPage } from "./docs";

const DOCUMENT_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "Taskflare",
    version: "1.0.0",
    description:
      "Job scheduler, background-task runner and health service in one Cloudflare Worker. " +
      'Every error is JSON, {"error": {"code", "message", "details"?, "request_id"}}; ' +
      "a method that a path does not list is answered 405 with Allow.",
  },
  security: [{ bearer: [] }],
};

/**
 * Serves the OpenAPI 3.1 document generated from the same zod schemas that
 * validate requests, and the /docs page built on it. Mount after every route.
 */
export function mountOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  // Bulk items are validated one by one, so the route's schema cannot reference this one itself.
  app.openAPIRegistry.register("TaskBatchItem", TaskBatchItem);
  app.doc31("/openapi.json", DOCUMENT_CONFIG);
  let page: ReturnType<typeof docsPage> | undefined;
  app.get("/docs", (c) => {
    // The routes are fixed once the app is built: render the page once per isolate.
    page ??= docsPage(app.getOpenAPI31Document(DOCUMENT_CONFIG));
    c.header("cache-control", "public, max-age=300");
    return c.html(page);
  });
}
