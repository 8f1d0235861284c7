import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { RETRY_AFTER_SECONDS } from "../../src/errors";
import { TaskflareRPC } from "../../src/rpc";
import { type BoundStatement, faultyHarness, insertRun, jobObjectsFailingFor, jobsDeletedAfterEach, storedJob } from "../helpers/faults";
import { received, receiverUrl } from "../helpers/receiver";
import { harness, MANUAL_RETRY, mustStoredRun } from "../helpers/runs";

// Invariant: a transient D1 or Durable Object failure is answered 503 with
// Retry-After, never 500; nothing was done, so the client may simply retry.
// A genuine bug is still a 500 that leaks nothing.

const jobs = jobsDeletedAfterEach("fault-503");

/** The envelope a transient storage failure is answered with. */
async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe(String(RETRY_AFTER_SECONDS));
  const body = await res.json<{ error: { code: string; message: string } }>();
  expect(body.error.code).toBe("unavailable");
  expect(body.error.message).not.toMatch(/D1_ERROR|Network connection|stack/i);
}

describe("faults: the API while D1 is down", () => {
  it("POST /v1/tasks answers 503 with Retry-After and stores nothing; the same request is accepted once D1 answers", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const key = `down-${crypto.randomUUID()}`;
    d1.down();

    await expectUnavailable(
      await h.api("/v1/tasks", { method: "POST", json: { target: { type: "http", url } }, headers: { "idempotency-key": key } }),
    );
    d1.heal();
    const run = await h.enqueue({ target: { type: "http", url } }, { "idempotency-key": key });
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("POST /v1/tasks/batch: a task whose insert failed transiently says 503 on its own item; the others are accepted", async () => {
    const { d1, h } = faultyHarness();
    const [bad, good] = [receiverUrl(), receiverUrl()];
    d1.down({ match: (s: BoundStatement) => insertRun(s) && s.params.some((p) => typeof p === "string" && p.includes(bad.prefix)) });

    const res = await h.api("/v1/tasks/batch", {
      method: "POST",
      json: { tasks: [{ target: { type: "http", url: bad.url } }, { target: { type: "http", url: good.url } }] },
    });

    expect(res.status).toBe(200);
    const { items } = await res.json<{ items: { status: number; run?: { id: string }; error?: { code: string } }[] }>();
    expect(items[0]).toMatchObject({ status: 503, error: { code: "unavailable" } });
    expect(items[1]?.status).toBe(202);
  });

  it.each([
    ["GET", "/v1/runs"],
    ["GET", "/v1/jobs"],
    ["GET", "/v1/scheduler"],
    ["POST", "/v1/scheduler/pause"],
  ])("%s %s answers 503 with Retry-After", async (method, path) => {
    const { d1, h } = faultyHarness();
    d1.down();
    await expectUnavailable(await h.api(path, { method }));
  });

  it("GET /v1/runs/:id and GET /v1/tasks/:id answer 503 with Retry-After, not 404 or 500", async () => {
    const h = harness();
    const run = await h.enqueue({ target: { type: "http", url: receiverUrl().url }, retry: MANUAL_RETRY });
    const { d1, h: down } = faultyHarness();
    d1.down();

    await expectUnavailable(await down.api(`/v1/runs/${run.id}`));
    await expectUnavailable(await down.api(`/v1/tasks/${run.id}`));
  });

  it("POST /v1/jobs answers 503 with Retry-After and creates no job", async () => {
    const { d1, h } = faultyHarness();
    const id = jobs.newId();
    d1.down();

    await expectUnavailable(
      await h.api("/v1/jobs", {
        method: "POST",
        json: { id, trigger: { type: "cron", expression: "0 0 1 1 *" }, target: { type: "http", url: receiverUrl().url } },
      }),
    );
    expect(await storedJob(id)).toBeNull();
  });

  it("a genuine bug (an SQL error) is still a 500 that leaks nothing", async () => {
    const broken = {
      prepare: () => {
        throw new Error('D1_ERROR: near "SELEC": syntax error at offset 0: SQLITE_ERROR');
      },
    } as unknown as D1Database;
    const h = harness({ DB: broken });

    const res = await h.api("/v1/runs");

    expect(res.status).toBe(500);
    expect(res.headers.get("retry-after")).toBeNull();
    const body = await res.json<{ error: { code: string; message: string } }>();
    expect(body.error).toMatchObject({ code: "internal_error", message: "Internal server error" });
  });
});

describe("faults: the API while a job's Durable Object is down", () => {
  it.each([
    ["POST", "pause"],
    ["POST", "resume"],
    ["POST", "run"],
  ])("%s /v1/jobs/:id/%s answers 503 with Retry-After", async (method, action) => {
    const job = await jobs.yearly(receiverUrl().url);
    const h = harness({ JOB_OBJECT: jobObjectsFailingFor(job.id) });
    await expectUnavailable(await h.api(`/v1/jobs/${job.id}/${action}`, { method }));
  });

  it("DELETE /v1/jobs/:id answers 503 when the object lost its connection", async () => {
    const job = await jobs.yearly(receiverUrl().url);
    const h = harness({ JOB_OBJECT: jobObjectsFailingFor(job.id, "Network connection lost.") });
    await expectUnavailable(await h.api(`/v1/jobs/${job.id}`, { method: "DELETE" }));
  });
});

describe("faults: TaskflareRPC while storage is down", () => {
  function rpcWith(bindings: Partial<Env>): TaskflareRPC {
    return new TaskflareRPC(createExecutionContext(), { ...env, ...bindings } as Env);
  }

  it("enqueue rejects with [unavailable], not [internal_error]", async () => {
    const { d1 } = faultyHarness();
    d1.down();
    await expect(rpcWith({ DB: d1.db }).enqueue({ target: { type: "http", url: receiverUrl().url } })).rejects.toThrow(/^\[unavailable\] /);
  });

  it("getRun and pauseJob reject with [unavailable] while D1 or the job's object is down", async () => {
    const { d1 } = faultyHarness();
    d1.down();
    await expect(rpcWith({ DB: d1.db }).getRun("run_whatever")).rejects.toThrow(/^\[unavailable\] /);
    const job = await jobs.yearly(receiverUrl().url);
    await expect(rpcWith({ JOB_OBJECT: jobObjectsFailingFor(job.id) }).pauseJob(job.id)).rejects.toThrow(/^\[unavailable\] /);
  });
});
