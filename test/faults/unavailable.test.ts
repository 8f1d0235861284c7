import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { RETRY_AFTER_SECONDS } from "../../src/errors";
import { TaskflareRPC } from "../../src/rpc";
import {
  faultyHarness,
  faultyShardHarness,
  faultyTaskShards,
  jobObjectsFailingFor,
  jobsDeletedAfterEach,
  storedJob,
} from "../helpers/faults";
import { keyInShard, shardOf, tasksWithKey } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { harness, mustStoredRun } from "../helpers/runs";

// Invariant: a transient D1 or Durable Object failure is answered 503 with
// Retry-After, never 500; nothing was done, so the client may simply retry.
// A task's runs are kept by its task shard, so a shard that is down answers
// 503 for them; D1 keeps jobs, statistics and the failure index, so D1 down
// answers 503 for those routes and leaves tasks alone. A genuine bug is still
// a 500 that leaks nothing.

const jobs = jobsDeletedAfterEach("fault-503");

/** The envelope a transient storage failure is answered with. */
async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe(String(RETRY_AFTER_SECONDS));
  const body = await res.json<{ error: { code: string; message: string } }>();
  expect(body.error.code).toBe("unavailable");
  expect(body.error.message).not.toMatch(/D1_ERROR|Network connection|stack/i);
}

describe("faults: the API while a task shard is down", () => {
  it.each(["reset", "overloaded"] as const)(
    "POST /v1/tasks answers 503 with Retry-After and stores nothing while the task's shard fails (%s); the same request is accepted once it answers",
    async (error) => {
      const { shards, h } = faultyShardHarness();
      const { url, prefix } = receiverUrl();
      const key = `down-${crypto.randomUUID()}`;
      shards.down({ error });

      await expectUnavailable(
        await h.api("/v1/tasks", { method: "POST", json: { target: { type: "http", url } }, headers: { "idempotency-key": key } }),
      );
      expect(await tasksWithKey(key)).toEqual([]);
      shards.heal();
      const run = await h.enqueue({ target: { type: "http", url } }, { "idempotency-key": key });
      await h.redeliver(h.lastSent(run.id));

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
      expect(await received(prefix)).toHaveLength(1);
    },
  );

  it("POST /v1/tasks/batch: a task whose shard is down says 503 on its own item; the others are accepted", async () => {
    const { shards, h } = faultyShardHarness();
    const [bad, good] = [receiverUrl(), receiverUrl()];
    shards.down({ shard: 5 });

    const res = await h.api("/v1/tasks/batch", {
      method: "POST",
      json: {
        tasks: [
          { target: { type: "http", url: bad.url }, idempotency_key: keyInShard(5) },
          { target: { type: "http", url: good.url }, idempotency_key: keyInShard(6) },
        ],
      },
    });

    expect(res.status).toBe(200);
    const { items } = await res.json<{ items: { status: number; run?: { id: string }; error?: { code: string } }[] }>();
    expect(items[0]).toMatchObject({ status: 503, error: { code: "unavailable" } });
    expect(items[1]?.status).toBe(202);
  });

  it.each([
    ["GET", "/v1/runs/{id}"],
    ["GET", "/v1/tasks/{id}"],
    ["GET", "/v1/runs/{id}/attempts"],
    ["POST", "/v1/runs/{id}/cancel"],
  ])("%s %s answers 503 with Retry-After while the run's shard is down, not 404 or 500", async (method, path) => {
    const run = await harness().enqueue({ target: { type: "http", url: receiverUrl().url }, delay: 3600 });
    const { shards, h } = faultyShardHarness();
    shards.down({ shard: shardOf(run.id) });

    await expectUnavailable(await h.api(path.replace("{id}", run.id), { method }));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "scheduled" });
  });

  it("POST /v1/runs/:id/retry answers 503 with Retry-After while the run's shard is down, and retries it once the shard answers", async () => {
    const ok = harness();
    const failed = await ok.enqueue({ target: { type: "http", url: receiverUrl("status=400").url }, retry: { max_attempts: 1 } });
    await ok.redeliver(ok.lastSent(failed.id));
    expect(await mustStoredRun(failed.id)).toMatchObject({ status: "failed" });
    const { shards, h } = faultyShardHarness();
    shards.down({ shard: shardOf(failed.id) });

    await expectUnavailable(await h.api(`/v1/runs/${failed.id}/retry`, { method: "POST" }));
    shards.heal();
    expect((await h.api(`/v1/runs/${failed.id}/retry`, { method: "POST" })).status).toBe(202);
  });

  it.each([
    ["GET", "/v1/runs"],
    ["GET", "/metrics"],
  ])("%s %s (it asks every shard) answers 503 with Retry-After while one shard is down", async (method, path) => {
    const { shards, h } = faultyShardHarness();
    shards.down({ shard: 7 });
    await expectUnavailable(await h.api(path, { method }));
  });
});

describe("faults: the API while D1 is down", () => {
  it("POST /v1/tasks and POST /v1/tasks/batch are accepted and the tasks run: D1 is off a task's path", async () => {
    const { d1, h } = faultyShardHarness();
    const [one, two] = [receiverUrl(), receiverUrl()];
    d1.down();

    const run = await h.enqueue({ target: { type: "http", url: one.url } });
    const res = await h.api("/v1/tasks/batch", { method: "POST", json: { tasks: [{ target: { type: "http", url: two.url } }] } });
    const { items } = await res.json<{ items: { status: number; run?: { id: string } }[] }>();
    expect(items.map((i) => i.status)).toEqual([202]);
    for (const id of [run.id, items[0]?.run?.id ?? ""]) {
      await h.redeliver(h.lastSent(id));
      expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded", attempt: 1 });
      expect((await h.api(`/v1/tasks/${id}`)).status).toBe(200);
    }
    expect(d1.broken).toEqual([]);
    expect(await received(one.prefix)).toHaveLength(1);
    expect(await received(two.prefix)).toHaveLength(1);
  });

  it.each([
    ["GET", "/v1/runs"],
    ["GET", "/v1/runs?status=failed"],
    ["GET", "/v1/jobs"],
    ["GET", "/v1/stats"],
    ["GET", "/v1/scheduler"],
    ["POST", "/v1/scheduler/pause"],
  ])("%s %s answers 503 with Retry-After", async (method, path) => {
    const { d1, h } = faultyHarness();
    d1.down();
    await expectUnavailable(await h.api(path, { method }));
  });

  it("GET /v1/runs/:id of a run D1 keeps (from before runs moved to their owners) answers 503 with Retry-After, not 404 or 500", async () => {
    const { d1, h } = faultyHarness();
    d1.down();

    await expectUnavailable(await h.api("/v1/runs/run_01m000000000000000000000000"));
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

  it("enqueue rejects with [unavailable], not [internal_error], while the task shards are down", async () => {
    const shards = faultyTaskShards();
    shards.down();
    await expect(rpcWith({ TASK_SHARD: shards.namespace }).enqueue({ target: { type: "http", url: receiverUrl().url } })).rejects.toThrow(
      /^\[unavailable\] /,
    );
  });

  it("getRun of a task rejects with [unavailable] while its shard is down", async () => {
    const run = await harness().enqueue({ target: { type: "http", url: receiverUrl().url }, delay: 3600 });
    const shards = faultyTaskShards();
    shards.down({ shard: shardOf(run.id) });
    await expect(rpcWith({ TASK_SHARD: shards.namespace }).getRun(run.id)).rejects.toThrow(/^\[unavailable\] /);
  });

  it("getRun and pauseJob reject with [unavailable] while D1 or the job's object is down", async () => {
    const { d1 } = faultyHarness();
    d1.down();
    await expect(rpcWith({ DB: d1.db }).getRun("run_whatever")).rejects.toThrow(/^\[unavailable\] /);
    const job = await jobs.yearly(receiverUrl().url);
    await expect(rpcWith({ JOB_OBJECT: jobObjectsFailingFor(job.id) }).pauseJob(job.id)).rejects.toThrow(/^\[unavailable\] /);
  });
});
