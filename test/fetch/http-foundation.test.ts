import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { api, call, type ErrorBody, TOKEN } from "../helpers/http";

describe("bearer-token auth on /v1", () => {
  it("refuses a request with no token with 401, a challenge and the error envelope", async () => {
    const res = await call("/v1/scheduler");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="taskflare"/);
    const body = await res.json<ErrorBody>();
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  });

  it("refuses a wrong token with 401 and error=invalid_token", async () => {
    const res = await api("/v1/scheduler", { headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it.each([
    ["an empty bearer", "Bearer "],
    ["the token with the Basic scheme", `Basic ${TOKEN}`],
    ["the bare token", TOKEN],
    ["a prefix of the token", `Bearer ${TOKEN.slice(0, -1)}`],
    ["two tokens", `Bearer ${TOKEN} ${TOKEN}`],
  ])("refuses %s", async (_name, authorization) => {
    const res = await api("/v1/scheduler", { headers: { authorization } });
    expect(res.status).toBe(401);
  });

  it("ignores a token passed in the query string", async () => {
    const res = await call(`/v1/scheduler?access_token=${TOKEN}&token=${TOKEN}`);
    expect(res.status).toBe(401);
  });

  it("accepts the right token, with the scheme in any case", async () => {
    expect((await api("/v1/scheduler")).status).toBe(200);
    expect((await api("/v1/scheduler", { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  it("keeps health public while /v1 needs the token", async () => {
    expect((await call("/healthz")).status).toBe(200);
    expect((await call("/readyz")).status).toBe(200);
  });

  it("refuses /v1 when no token is configured outside local development", async () => {
    const res = await worker.fetch(new Request("https://t/v1/scheduler"), { ...env, API_TOKEN: "" }, createExecutionContext());
    expect(res.status).toBe(503);
    expect((await res.json<ErrorBody>()).error.message).toMatch(/API_TOKEN/);
  });

  it("serves /v1 without a token only when .dev.vars marks local development", async () => {
    const local = { ...env, API_TOKEN: undefined, LOCAL_DEVELOPMENT: "true" };
    const res = await worker.fetch(new Request("https://t/v1/scheduler"), local, createExecutionContext());
    expect(res.status).toBe(200);
  });
});

describe("request ids", () => {
  it("echoes the caller's x-request-id", async () => {
    const res = await call("/healthz", { headers: { "x-request-id": "caller-chosen-id-42" } });
    expect(res.headers.get("x-request-id")).toBe("caller-chosen-id-42");
  });

  it("generates an id when none is given", async () => {
    const res = await call("/healthz");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("replaces an id that could inject into logs", async () => {
    const res = await call("/healthz", { headers: { "x-request-id": "bad id\twith spaces" } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("puts the request id into error bodies", async () => {
    const res = await call("/nowhere", { headers: { "x-request-id": "trace-me" } });
    expect((await res.json<ErrorBody>()).error.request_id).toBe("trace-me");
  });
});

describe("access log", () => {
  afterEach(() => vi.restoreAllMocks());

  /** The access-log lines written while `path` is served, as parsed JSON. */
  async function accessLines(path: string, bindings: typeof env = env): Promise<{ path: string; status: number }[]> {
    const lines: string[] = [];
    for (const method of ["log", "error"] as const)
      vi.spyOn(console, method).mockImplementation((line: unknown) => void lines.push(String(line)));
    await (await worker.fetch(new Request(`https://t${path}`), bindings, createExecutionContext())).arrayBuffer();
    return lines.map((line) => JSON.parse(line)).filter((entry) => entry.event === "http_request");
  }

  it("writes one line per failed request with its path and status", async () => {
    expect(await accessLines("/nowhere")).toMatchObject([{ path: "/nowhere", status: 404 }]);
  });

  it("writes successful requests at LOG_LEVEL=debug only (the platform's invocation log has them)", async () => {
    expect(await accessLines("/openapi.json")).toEqual([]);
    expect(await accessLines("/openapi.json", { ...env, LOG_LEVEL: "debug" })).toMatchObject([{ path: "/openapi.json", status: 200 }]);
    expect(await accessLines("/healthz", { ...env, LOG_LEVEL: "debug" })).toEqual([]);
  });

  it("leaves out successful health probes", async () => {
    expect(await accessLines("/healthz")).toEqual([]);
    expect(await accessLines("/readyz")).toEqual([]);
  });

  it("logs a failing readiness probe", async () => {
    expect(await accessLines("/readyz", { ...env, API_TOKEN: undefined })).toMatchObject([{ path: "/readyz", status: 503 }]);
  });
});

describe("error model", () => {
  it("answers an unknown route with a JSON 404", async () => {
    const res = await call("/no/such/route");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect((await res.json<ErrorBody>()).error.code).toBe("not_found");
  });

  it("answers an unknown /v1 route with 404 once authenticated", async () => {
    const res = await api("/v1/no-such-thing");
    expect(res.status).toBe(404);
  });

  it("answers a known path with the wrong method with a JSON 405 and Allow", async () => {
    const res = await call("/healthz", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expect((await res.json<ErrorBody>()).error.code).toBe("method_not_allowed");
  });

  it("refuses a body over 1 MiB with a JSON 413", async () => {
    const res = await call("/v1/scheduler", {
      method: "POST",
      body: "x".repeat(1024 * 1024 + 1),
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect((await res.json<ErrorBody>()).error.code).toBe("payload_too_large");
  });

  it("refuses a chunked body over 1 MiB with a JSON 413", async () => {
    const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ >= 20) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await call("/v1/scheduler", {
      method: "POST",
      body: stream,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(413);
  });
});

describe("validation messages", () => {
  /** The 400's message and its details' paths. */
  async function refusal(res: Response): Promise<{ message: string; paths: string[] }> {
    expect(res.status).toBe(400);
    const { error } = await res.json<ErrorBody>();
    expect(error.code).toBe("validation_failed");
    return { message: error.message, paths: (error.details as { path: string }[]).map((d) => d.path) };
  }

  it("a body that fails says which fields and why, the first three of them, with every field in details", async () => {
    const job = { trigger: { type: "cron", expression: "bad" }, target: { type: "http" }, max_instances: 0, coalesce: "yes" };
    const { message, paths } = await refusal(await api("/v1/jobs", { method: "POST", json: job }));
    expect(message).toMatch(
      /^Invalid request body: trigger\.expression: invalid cron expression: [^;]+; target\.url: [^;]+; max_instances: [^;]+ \(and 1 more\)$/,
    );
    expect(paths).toEqual(["trigger.expression", "target.url", "max_instances", "coalesce"]);
  });

  it("a query, path or header value that fails is named in the message", async () => {
    expect((await refusal(await api("/v1/runs?limit=abc"))).message).toMatch(/^Invalid query parameter limit: /);
    expect((await refusal(await api("/v1/runs?limit=abc&status=nope"))).message).toMatch(
      /^Invalid query parameters: (status|limit): .+; (status|limit): /,
    );
    expect((await refusal(await api("/v1/hosts/a%20b"))).message).toBe("Invalid path parameter host: a host name, optionally with :port");
    const key = { "idempotency-key": "k".repeat(201) };
    const res = await api("/v1/tasks", { method: "POST", json: { target: { type: "http", url: "https://example.com/" } }, headers: key });
    expect((await refusal(res)).message).toMatch(/^Invalid header idempotency-key: /);
  });

  it("stays short however much was wrong", async () => {
    const job = { trigger: { type: "cron", expression: "* * * * *" }, target: { type: "http", url: "https://example.com/" } };
    const hostile = { ...job, ["k".repeat(10_000)]: 1, tags: Array.from({ length: 20 }, () => "") };
    const { message, paths } = await refusal(await api("/v1/jobs", { method: "POST", json: hostile }));
    expect(paths.length).toBeGreaterThan(20);
    expect(message.length).toBeLessThan(800);
    expect(message).toMatch(/\(and \d+ more\)$/);
  });

  it("a bad item of a task batch says what was wrong with it", async () => {
    const res = await api("/v1/tasks/batch", { method: "POST", json: { tasks: [{ target: { type: "http", url: 42 } }] } });
    const { items } = await res.json<{ items: { status: number; error?: { message: string } }[] }>();
    expect(items[0]?.status).toBe(400);
    expect(items[0]?.error?.message).toMatch(/^Invalid task: target\.url: /);
  });
});

describe("API token rotation", () => {
  const rotating = { ...env, API_TOKEN: "new-token-aaaaaaaaaaaaaaaa", API_TOKEN_PREVIOUS: TOKEN };
  const get = (authorization: string) =>
    worker.fetch(new Request("https://t/v1/scheduler", { headers: { authorization } }), rotating, createExecutionContext());

  it("accepts both the new and the previous token while rotating", async () => {
    expect((await get("Bearer new-token-aaaaaaaaaaaaaaaa")).status).toBe(200);
    expect((await get(`Bearer ${TOKEN}`)).status).toBe(200);
  });

  it("refuses any other token while rotating, and the previous one once it is removed", async () => {
    expect((await get("Bearer some-other-token")).status).toBe(401);
    const rotated = { ...env, API_TOKEN: "new-token-aaaaaaaaaaaaaaaa" };
    const res = await worker.fetch(
      new Request("https://t/v1/scheduler", { headers: { authorization: `Bearer ${TOKEN}` } }),
      rotated,
      createExecutionContext(),
    );
    expect(res.status).toBe(401);
  });
});
