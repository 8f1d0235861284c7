import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { faultyHarness, jobsDeletedAfterEach, writeJob } from "../helpers/faults";
import { api, type ErrorBody } from "../helpers/http";
import { createJob, type JobBody, jobStub } from "../helpers/jobs";
import { receiverUrl } from "../helpers/receiver";

// A job's ETag is its version ("3"); writes honour If-Match, and every write is
// conditional on the version it was computed from, so concurrent edits never
// silently undo each other.

const jobs = jobsDeletedAfterEach("etag");
const definition = () => ({ trigger: { type: "cron", expression: "0 0 1 1 *" }, target: { type: "http", url: receiverUrl().url } });

async function newJob(overrides: Record<string, unknown> = {}): Promise<JobBody> {
  return createJob({ id: jobs.newId(), ...definition(), ...overrides });
}

/** The job's row in D1 (what these tests check of it). */
async function stored(id: string) {
  return env.DB.prepare("SELECT version, state, name FROM jobs WHERE id = ?")
    .bind(id)
    .first<{ version: number; state: string; name: string }>();
}

const ifMatch = (etag: string) => ({ headers: { "if-match": etag } });

describe("fetch: a job's ETag", () => {
  it("every response that returns one job carries its version as a strong ETag: POST, GET, PUT, PATCH, pause, resume", async () => {
    const id = jobs.newId();
    const created = await api("/v1/jobs", { method: "POST", json: { id, ...definition() } });
    expect(created.status).toBe(201);
    expect(created.headers.get("etag")).toBe('"1"');

    const answers = [
      await api(`/v1/jobs/${id}`),
      await api(`/v1/jobs/${id}`, { method: "PUT", json: definition() }),
      await api(`/v1/jobs/${id}`, { method: "PATCH", json: { name: "renamed" } }),
      await api(`/v1/jobs/${id}/pause`, { method: "POST" }),
      await api(`/v1/jobs/${id}/resume`, { method: "POST" }),
    ];

    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((r) => r.headers.get("etag"))).toEqual(['"1"', '"2"', '"3"', '"4"', '"5"']);
    const bodies = await Promise.all(answers.map((r) => r.json<JobBody>()));
    expect(bodies.map((b) => b.version)).toEqual([1, 2, 3, 4, 5]);
    const put = await api(`/v1/jobs/${jobs.newId()}`, { method: "PUT", json: definition() });
    expect([put.status, put.headers.get("etag")]).toEqual([201, '"1"']);
  });
});

describe("fetch: If-Match on job writes", () => {
  it("PATCH, PUT, pause and resume with the current ETag apply the change and answer the next ETag", async () => {
    const job = await newJob();
    const steps = [
      await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "one" }, ...ifMatch('"1"') }),
      await api(`/v1/jobs/${job.id}`, { method: "PUT", json: { ...definition(), name: "two" }, ...ifMatch('"2"') }),
      await api(`/v1/jobs/${job.id}/pause`, { method: "POST", ...ifMatch('"3"') }),
      await api(`/v1/jobs/${job.id}/resume`, { method: "POST", ...ifMatch('"4"') }),
    ];

    expect(steps.map((r) => [r.status, r.headers.get("etag")])).toEqual([
      [200, '"2"'],
      [200, '"3"'],
      [200, '"4"'],
      [200, '"5"'],
    ]);
    expect(await stored(job.id)).toEqual({ version: 5, state: "active", name: "two" });
    expect((await jobStub(job.id).inspect()).version).toBe(5);
  });

  it("a stale ETag is 412 precondition_failed with the current version, on PATCH, PUT, pause, resume and DELETE; nothing changes", async () => {
    const job = await newJob();
    await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "current" } });
    const stale = ifMatch('"1"');

    const answers = [
      await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "lost" }, ...stale }),
      await api(`/v1/jobs/${job.id}`, { method: "PUT", json: definition(), ...stale }),
      await api(`/v1/jobs/${job.id}/pause`, { method: "POST", ...stale }),
      await api(`/v1/jobs/${job.id}/resume`, { method: "POST", ...stale }),
      await api(`/v1/jobs/${job.id}`, { method: "DELETE", ...stale }),
    ];

    for (const res of answers) {
      expect(res.status).toBe(412);
      expect(res.headers.get("etag")).toBe('"2"');
      const body = await res.json<ErrorBody>();
      expect(body.error.code).toBe("precondition_failed");
      expect(body.error.details).toEqual({ current_version: 2, etag: '"2"' });
    }
    expect(await stored(job.id)).toEqual({ version: 2, state: "active", name: "current" });
    expect((await jobStub(job.id).inspect()).version).toBe(2);
  });

  it("If-Match on a job that does not exist is 412, and PUT does not create it (RFC 9110)", async () => {
    const id = jobs.newId();
    const answers = [
      await api(`/v1/jobs/${id}`, { method: "PUT", json: definition(), ...ifMatch("*") }),
      await api(`/v1/jobs/${id}`, { method: "PATCH", json: { name: "x" }, ...ifMatch('"1"') }),
      await api(`/v1/jobs/${id}/pause`, { method: "POST", ...ifMatch("*") }),
      await api(`/v1/jobs/${id}`, { method: "DELETE", ...ifMatch('"1"') }),
    ];

    for (const res of answers) {
      expect(res.status).toBe(412);
      expect((await res.json<ErrorBody>()).error).toMatchObject({ code: "precondition_failed", details: { current_version: null } });
    }
    expect(await stored(id)).toBeNull();
  });

  it("If-Match: * matches any existing job; a list matches any version it names; a weak tag never matches (strong comparison)", async () => {
    const job = await newJob();

    const any = await api(`/v1/jobs/${job.id}/pause`, { method: "POST", ...ifMatch("*") });
    const listed = await api(`/v1/jobs/${job.id}/resume`, { method: "POST", ...ifMatch('"7", "2"') });
    const weak = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "weak" }, ...ifMatch('W/"3"') });

    expect([any.status, listed.status, weak.status]).toEqual([200, 200, 412]);
    expect(await stored(job.id)).toMatchObject({ version: 3, state: "active" });
  });

  it("DELETE with the current ETag deletes the job", async () => {
    const job = await newJob();
    const res = await api(`/v1/jobs/${job.id}`, { method: "DELETE", ...ifMatch('"1"') });
    expect(res.status).toBe(204);
    expect(await stored(job.id)).toBeNull();
    expect((await jobStub(job.id).inspect()).jobId).toBeNull();
  });
});

describe("fetch: concurrent writes to one job", () => {
  it("a pause that lands between a PATCH's read and its write stays paused: the PATCH is re-applied to the paused version, the version goes up twice and the JobObject gets the last one", async () => {
    const { d1, h } = faultyHarness();
    const job = await newJob();
    let paused: Response | undefined;
    d1.interleave(writeJob, async () => {
      paused = await api(`/v1/jobs/${job.id}/pause`, { method: "POST" });
    });

    const patched = await h.api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "renamed" } });

    expect(paused?.status).toBe(200);
    expect(patched.status).toBe(200);
    expect(patched.headers.get("etag")).toBe('"3"');
    expect(await patched.json<JobBody>()).toMatchObject({ state: "paused", version: 3, name: "renamed" });
    expect(await stored(job.id)).toEqual({ version: 3, state: "paused", name: "renamed" });
    const clock = await jobStub(job.id).inspect();
    expect(clock.version).toBe(3);
    expect(clock.alarm).toBeNull();
  });

  it("a PATCH with If-Match whose write loses the race to a pause is 412, and the pause stays", async () => {
    const { d1, h } = faultyHarness();
    const job = await newJob();
    d1.interleave(writeJob, () => api(`/v1/jobs/${job.id}/pause`, { method: "POST" }));

    const patched = await h.api(`/v1/jobs/${job.id}`, {
      method: "PATCH",
      json: { paused: false, name: "stale" },
      headers: { "if-match": '"1"' },
    });

    expect(patched.status).toBe(412);
    expect((await patched.json<ErrorBody>()).error.details).toEqual({ current_version: 2, etag: '"2"' });
    expect(await stored(job.id)).toMatchObject({ version: 2, state: "paused" });
    expect((await jobStub(job.id).inspect()).version).toBe(2);
  });
});

/** The message an RPC call failed with (awaited here: an RPC promise left to `rejects` surfaces as unhandled). */
async function rpcFailure(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return "(it succeeded)";
}

describe("TaskflareRPC: expected_version", () => {
  it("a job write with a stale expected_version fails with [precondition_failed] naming the current version; the current one applies", async () => {
    const rpc = exports.TaskflareRPC;
    const job = await newJob();
    await api(`/v1/jobs/${job.id}/pause`, { method: "POST" });

    expect(await rpcFailure(rpc.resumeJob(job.id, { expected_version: 1 }))).toMatch(/^\[precondition_failed\] .*"current_version":2/);
    expect(await rpcFailure(rpc.updateJob(job.id, { name: "x" }, { expected_version: 1 }))).toMatch(/^\[precondition_failed\]/);
    expect(await rpcFailure(rpc.deleteJob(job.id, { expected_version: 1 }))).toMatch(/^\[precondition_failed\]/);
    expect(await stored(job.id)).toMatchObject({ version: 2, state: "paused" });

    const resumed = await rpc.resumeJob(job.id, { expected_version: 2 });
    expect(resumed).toMatchObject({ version: 3, state: "active" });
  });
});
