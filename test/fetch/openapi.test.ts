import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { api, BASE, call, TOKEN } from "../helpers/http";

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: { pattern?: string };
}
interface Answer {
  content?: Record<string, unknown>;
  headers?: Record<string, unknown>;
}
interface Operation {
  responses: Record<string, Answer>;
  requestBody?: { content: Record<string, unknown> };
  parameters?: Parameter[];
  security?: unknown[];
}
interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
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

let doc: OpenApiDoc;
beforeAll(async () => {
  doc = await (await call("/openapi.json")).json<OpenApiDoc>();
});

/** Every operation of the document, with its path template and method. */
function operations(): { path: string; method: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
}

/** The operation a concrete request lands on, matching `{param}` segments. */
function operationFor(method: string, url: string): { path: string; op: Operation } | undefined {
  const pathname = new URL(url, BASE).pathname;
  for (const [path, item] of Object.entries(doc.paths)) {
    const template = new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    const op = item[method.toLowerCase()];
    if (op && template.test(pathname)) return { path, op };
  }
  return undefined;
}

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

const megabyteAndOne = "x".repeat(1024 * 1024 + 1);
const withoutToken = { ...env, API_TOKEN: "" };

describe("GET /openapi.json", () => {
  it("documents every /v1 route, generated from the validating schemas, with bearer auth", async () => {
    expect(doc.openapi).toBe("3.1.0");
    for (const [method, path] of expectedRoutes) {
      expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
    expect(doc.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" });
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["Job", "Run", "Trigger", "Target", "TaskRequest", "Error"]),
    );
  });

  it("documents the probes and /metrics: public health+json probes, Prometheus text behind the token", () => {
    expect(Object.keys(doc.paths["/healthz"] ?? {}).sort()).toEqual(["get", "head"]);
    expect(doc.paths["/healthz"]?.get?.security).toEqual([]);
    const ready = doc.paths["/readyz"]?.get;
    expect(ready?.security).toEqual([]);
    expect(Object.keys(ready?.responses ?? {})).toEqual(["200", "503"]);
    expect(Object.keys(ready?.responses["503"]?.content ?? {})).toEqual(["application/health+json"]);
    const metrics = doc.paths["/metrics"]?.get;
    expect(metrics?.security).toBeUndefined();
    expect(Object.keys(metrics?.responses ?? {})).toEqual(["200", "401", "503"]);
    expect(Object.keys(metrics?.responses["200"]?.content ?? {})).toEqual(["text/plain; version=0.0.4"]);
  });

  it("every /v1 operation lists 401, and 503 with Retry-After", () => {
    const v1 = operations().filter((o) => o.path.startsWith("/v1/"));
    expect(v1.length).toBeGreaterThanOrEqual(expectedRoutes.length);
    for (const { path, method, op } of v1) {
      expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["401", "503"]));
      expect(Object.keys(op.responses["503"]?.headers ?? {}), `${method} ${path}`).toEqual(["Retry-After"]);
    }
  });

  it("every operation with a JSON body lists 400, 413 and 415; every one that reads input lists 400", () => {
    const withBody = operations().filter((o) => o.op.requestBody?.content["application/json"]);
    expect(withBody.length).toBeGreaterThanOrEqual(7);
    for (const { path, method, op } of withBody) {
      expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["400", "413", "415"]));
    }
    for (const { path, method, op } of operations().filter((o) => o.path.startsWith("/v1/") && o.op.parameters?.length)) {
      expect(Object.keys(op.responses), `${method} ${path}`).toContain("400");
    }
  });

  it("job writes declare an optional If-Match and 412, and job answers an ETag", () => {
    const job = doc.paths["/v1/jobs/{id}"] ?? {};
    const writes = [job.put, job.patch, job.delete, doc.paths["/v1/jobs/{id}/pause"]?.post, doc.paths["/v1/jobs/{id}/resume"]?.post];
    for (const op of writes) {
      expect(Object.keys(op?.responses ?? {})).toContain("412");
      expect(op?.parameters?.find((p) => p.in === "header")).toMatchObject({ name: "if-match", required: false });
    }
    const answers = [job.get, job.put, job.patch, doc.paths["/v1/jobs/{id}/pause"]?.post, doc.paths["/v1/jobs/{id}/resume"]?.post];
    for (const op of answers) expect(Object.keys(op?.responses["200"]?.headers ?? {})).toEqual(["ETag"]);
  });

  it("every pattern compiles as an ECMA regex without flags, and none carries a flag as text", () => {
    const all = patterns(doc);
    expect(all.length).toBeGreaterThan(1);
    for (const pattern of all) {
      expect(() => new RegExp(pattern), pattern).not.toThrow();
      expect(() => new RegExp(pattern, "u"), pattern).not.toThrow();
      expect(pattern, pattern).not.toMatch(/\/[dgimsuvy]+$/);
    }
  });

  it("the host parameter's pattern accepts host names in any case, with a port, and nothing else", () => {
    for (const op of Object.values(doc.paths["/v1/hosts/{host}"] ?? {})) {
      const host = new RegExp(op.parameters?.find((p) => p.name === "host")?.schema.pattern ?? "(?!)");
      for (const name of ["api.example.com", "Example.COM:8443", "[::1]:8080"]) expect(host.test(name), name).toBe(true);
      for (const name of ["a b", "a/b", "a?b", ""]) expect(host.test(name), name).toBe(false);
    }
  });
});

describe("every answer the Worker gives is documented for its route", () => {
  const cases: [string, string, RequestInit, typeof env | undefined, number][] = [
    ["healthz", "/healthz", {}, undefined, 200],
    ["healthz HEAD", "/healthz", { method: "HEAD" }, undefined, 200],
    ["readyz", "/readyz", {}, undefined, 200],
    ["readyz with no API token configured", "/readyz", {}, withoutToken, 503],
    ["metrics", "/metrics", { headers: { authorization: `Bearer ${TOKEN}` } }, undefined, 200],
    ["metrics without a token", "/metrics", {}, undefined, 401],
    ["an unauthenticated job list", "/v1/jobs", {}, undefined, 401],
    ["the API with no token configured", "/v1/jobs", {}, withoutToken, 503],
    ["a bad query parameter", "/v1/runs?limit=abc", {}, undefined, 400],
    ["a bad host", "/v1/hosts/a%20b", {}, undefined, 400],
    ["an unknown job", "/v1/jobs/no-such-job", {}, undefined, 404],
    ["an unknown run's cancel", "/v1/runs/no-such-run/cancel", { method: "POST" }, undefined, 404],
    [
      "a body over 1 MiB",
      "/v1/jobs",
      { method: "POST", body: megabyteAndOne, headers: { "content-type": "application/json" } },
      undefined,
      413,
    ],
    ["a body over 1 MiB on a route without one", "/v1/scheduler/pause", { method: "POST", body: megabyteAndOne }, undefined, 413],
    [
      "a task that is not JSON",
      "/v1/tasks",
      { method: "POST", body: "target=x", headers: { "content-type": "text/plain" } },
      undefined,
      415,
    ],
    [
      "a host policy that is not JSON",
      "/v1/hosts/example.com",
      { method: "PUT", body: "<x/>", headers: { "content-type": "application/xml" } },
      undefined,
      415,
    ],
  ];

  it.each(cases)("%s", async (_name, path, init, bindings, status) => {
    const headers = new Headers(init.headers);
    if (path.startsWith("/v1/") && bindings === undefined && status !== 401) headers.set("authorization", `Bearer ${TOKEN}`);
    const method = init.method ?? "GET";
    const res = bindings
      ? await worker.fetch(new Request(`${BASE}${path}`, { method, headers, body: init.body }), bindings, createExecutionContext())
      : await call(path, { ...init, headers });
    expect(res.status).toBe(status);

    const route = operationFor(method, path);
    expect(route, `${method} ${path} is in the document`).toBeDefined();
    const documented = route?.op.responses[String(status)];
    expect(documented, `${method} ${route?.path} documents ${status}`).toBeDefined();
    const type = res.headers.get("content-type");
    if (method !== "HEAD" && type) {
      const mediaTypes = Object.keys(documented?.content ?? {});
      expect(
        mediaTypes.some((m) => type.startsWith(m)),
        `${type} is one of ${mediaTypes.join(", ")}`,
      ).toBe(true);
    }
    await res.body?.cancel();
  });

  it("a 409 on a duplicate job and the 204 of its deletion", async () => {
    const id = `openapi-${Date.now()}`;
    const job = { id, trigger: { type: "date", run_at: "2099-01-01T00:00:00Z" }, target: { type: "http", url: "https://example.com/x" } };
    expect((await api("/v1/jobs", { method: "POST", json: job })).status).toBe(201);
    const duplicate = await api("/v1/jobs", { method: "POST", json: job });
    const deleted = await api(`/v1/jobs/${id}`, { method: "DELETE" });
    expect([duplicate.status, deleted.status]).toEqual([409, 204]);
    expect(Object.keys(operationFor("POST", "/v1/jobs")?.op.responses ?? {})).toEqual(expect.arrayContaining(["201", "409"]));
    expect(Object.keys(operationFor("DELETE", `/v1/jobs/${id}`)?.op.responses ?? {})).toContain("204");
  });
});
