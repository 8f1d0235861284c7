import { describe, expect, it } from "vitest";
import { api, type ErrorBody } from "../helpers/http";
import { eventually, received, receiverUrl } from "../helpers/receiver";

interface RunBody {
  id: string;
  status: string;
  attempt: number;
  result: unknown;
  error: unknown;
  retry_of: string | null;
}

async function enqueue(body: unknown, headers: Record<string, string> = {}) {
  return api("/v1/tasks", { method: "POST", json: body, headers });
}

async function settled(id: string, timeoutMs = 10_000): Promise<RunBody> {
  return eventually(
    async () => {
      const run = await (await api(`/v1/runs/${id}`)).json<RunBody>();
      return ["succeeded", "failed", "dead", "cancelled"].includes(run.status) ? run : undefined;
    },
    timeoutMs,
    `run ${id} to finish`,
  );
}

describe("POST /v1/tasks", () => {
  it("returns 202 at once and the queue consumer delivers the HTTP target", async () => {
    const { url, prefix } = receiverUrl();
    const res = await enqueue({ target: { type: "http", url, body: { hello: "world" } } });
    expect(res.status).toBe(202);
    const run = await res.json<RunBody>();
    expect(run.status).toBe("queued");
    const done = await settled(run.id);
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(1);
    const got = await received(prefix);
    expect(got).toHaveLength(1);
    expect(got[0]?.method).toBe("POST");
    expect(JSON.parse(got[0]?.body ?? "")).toEqual({ hello: "world" });
  });

  it("retries a 503 and succeeds on a later attempt", async () => {
    const { url, prefix } = receiverUrl("status=503&fail_times=2");
    const res = await enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 0, max_delay: 0 } });
    const done = await settled((await res.json<RunBody>()).id);
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(3);
    expect(await received(prefix)).toHaveLength(3);
  });

  it("fails a 404 at once without retrying", async () => {
    const { url, prefix } = receiverUrl("status=404");
    const res = await enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 0, max_delay: 0 } });
    const done = await settled((await res.json<RunBody>()).id);
    expect(done.status).toBe("failed");
    expect(done.attempt).toBe(1);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("marks a run dead when every attempt fails", async () => {
    const { url, prefix } = receiverUrl("status=500");
    const res = await enqueue({ target: { type: "http", url }, retry: { max_attempts: 3, backoff: 0, max_delay: 0 } });
    const done = await settled((await res.json<RunBody>()).id);
    expect(done.status).toBe("dead");
    expect(done.attempt).toBe(3);
    expect(await received(prefix)).toHaveLength(3);
  });

  it("rejects an unknown handler at enqueue time with 400", async () => {
    const res = await enqueue({ target: { type: "handler", name: "no-such-handler" } });
    expect(res.status).toBe(400);
    expect((await res.json<ErrorBody>()).error.message).toContain("no-such-handler");
  });

  it("rejects bad handler arguments at enqueue time with 400", async () => {
    const res = await enqueue({ target: { type: "handler", name: "cleanup-runs", args: { older_than_days: "soon" } } });
    expect(res.status).toBe(400);
    const body = await res.json<ErrorBody>();
    expect(JSON.stringify(body.error.details)).toContain("target.args.older_than_days");
  });

  it("refuses a loopback target with 400", async () => {
    const res = await enqueue({ target: { type: "http", url: "http://127.0.0.1:8080/" } });
    expect(res.status).toBe(400);
  });

  it.each([
    ["a credential", { headers: { Authorization: "Bearer x" }, forward_headers: ["authorization"] }, "target.forward_headers.0"],
    ["a cookie", { headers: { cookie: "a=b" }, forward_headers: ["Cookie"] }, "target.forward_headers.0"],
    [
      "a header the target does not send",
      { headers: { "x-api-key": "k" }, forward_headers: ["x-api-key", "x-other"] },
      "target.forward_headers.1",
    ],
  ])("refuses forward_headers naming %s with 400 at the field", async (_name, fields, path) => {
    const res = await enqueue({ target: { type: "http", url: "https://example.com/hook", ...fields } });
    expect(res.status).toBe(400);
    expect((await res.json<ErrorBody>()).error.details).toEqual([expect.objectContaining({ path })]);
  });

  it("refuses forward_headers naming a credential in the http handler's arguments too", async () => {
    const args = { url: "https://example.com/hook", headers: { "proxy-authorization": "x" }, forward_headers: ["proxy-authorization"] };
    const res = await enqueue({ target: { type: "handler", name: "http", args } });
    expect(res.status).toBe(400);
    expect(JSON.stringify((await res.json<ErrorBody>()).error.details)).toContain("target.args.forward_headers.0");
  });

  it("answers malformed JSON with a 400 envelope", async () => {
    const res = await api("/v1/tasks", { method: "POST", body: "{", headers: { "content-type": "application/json" } } as RequestInit);
    expect(res.status).toBe(400);
    expect((await res.json<ErrorBody>()).error.code).toBe("malformed_json");
  });

  it("answers a wrong field type with 400 and the field's path", async () => {
    const res = await enqueue({ target: { type: "http", url: 42 } });
    expect(res.status).toBe(400);
    const body = await res.json<ErrorBody>();
    expect(body.error.code).toBe("validation_failed");
    expect(JSON.stringify(body.error.details)).toContain("target.url");
  });
});
