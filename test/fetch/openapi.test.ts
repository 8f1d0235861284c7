import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

interface OpenApiDoc {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, unknown>; requestBody?: unknown; parameters?: { name: string; schema: { pattern?: string } }[] }
    >
  >;
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

/** Every `pattern` string anywhere in the document. */
function patterns(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) patterns(item, found);
  else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "pattern" && typeof value === "string") found.push(value);
      else patterns(value, found);
    }
  }
  return found;
}

describe("patterns in /openapi.json", () => {
  it("every pattern compiles as an ECMA regex without flags, and none carries a flag as text", async () => {
    const all = patterns(await (await call("/openapi.json")).json());
    expect(all.length).toBeGreaterThan(1);
    for (const pattern of all) {
      expect(() => new RegExp(pattern), pattern).not.toThrow();
      expect(() => new RegExp(pattern, "u"), pattern).not.toThrow();
      expect(pattern, pattern).not.toMatch(/\/[dgimsuvy]+$/);
    }
  });

  it("the host parameter's pattern accepts host names in any case, with a port, and nothing else", async () => {
    const doc = await (await call("/openapi.json")).json<OpenApiDoc>();
    for (const op of Object.values(doc.paths["/v1/hosts/{host}"] ?? {})) {
      const host = new RegExp(op.parameters?.find((p) => p.name === "host")?.schema.pattern ?? "(?!)");
      for (const name of ["api.example.com", "Example.COM:8443", "[::1]:8080"]) expect(host.test(name), name).toBe(true);
      for (const name of ["a b", "a/b", "a?b", ""]) expect(host.test(name), name).toBe(false);
    }
  });
});
