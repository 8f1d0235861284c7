import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const expectedRoutes = [
  ["post", "/v1/jobs"],
  ["get", "/v1/jobs"],
  ["put", "/v1/jobs/{id}"],
  ["get", "/v1/jobs/{id}"],
  ["patch", "/v1/jobs/{id}"],
  ["delete", "/v1/jobs/{id}"],
  ["post", "/v1/jobs/{id}/pause"],
  ["post", "/v1/jobs/{id}/resume"],
  ["post", "/v1/jobs/{id}/run"],
  ["get", "/v1/jobs/{id}/runs"],
  ["get", "/v1/runs"],
  ["get", "/v1/runs/{id}"],
  ["post", "/v1/runs/{id}/cancel"],
  ["post", "/v1/runs/{id}/retry"],
  ["post", "/v1/tasks"],
  ["get", "/v1/tasks/{id}"],
  ["get", "/v1/scheduler"],
  ["post", "/v1/scheduler/pause"],
  ["post", "/v1/scheduler/resume"],
  ["post", "/v1/triggers/preview"],
] as const;

describe("GET /openapi.json", () => {
  it("documents every /v1 route, generated from the validating schemas, with bearer auth", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = await res.json<OpenApiDoc>();
    expect(doc.openapi).toBe("3.1.0");
    for (const [method, path] of expectedRoutes) {
      expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(Object.keys(doc.paths[path]?.[method]?.responses ?? {})).toContain("401");
    }
    expect(doc.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" });
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["Job", "Run", "Trigger", "Target", "TaskRequest", "Error"]),
    );
  });
});
