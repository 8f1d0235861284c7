import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { getJob } from "../../src/jobs/store";
import type { JobObject } from "../../src/scheduling/job-object";
import { faultyHarness, jobsDeletedAfterEach, setRecordedNextRun, storedJob } from "../helpers/faults";
import { api } from "../helpers/http";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";

// A deleted job is gone, and stays gone: the JobObject honours the removal first (a
// tombstone), then D1 forgets the row, and nothing that raced the deletion brings it back.

const jobs = jobsDeletedAfterEach("delete");

/** The DELETE's D1 batch (the row, its pending runs and its statistics). */
const deleteJobRow = (s: { sql: string }) => s.sql.startsWith('delete from "jobs"');

describe("DELETE /v1/jobs/:id", () => {
  it("tells the JobObject first: if D1 then fails, the job fires nothing, and a repeated DELETE finishes the deletion", async () => {
    const { d1, h } = faultyHarness();
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    d1.failNext({ match: deleteJobRow });

    const failed = await h.api(`/v1/jobs/${job.id}`, { method: "DELETE" });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(await jobStub(job.id).inspect()).toMatchObject({ jobId: null, nextFire: null, alarm: null });
    expect(await storedJob(job.id)).not.toBeNull();

    const repeated = await h.api(`/v1/jobs/${job.id}`, { method: "DELETE" });
    expect(repeated.status).toBe(204);
    expect(await storedJob(job.id)).toBeNull();
    expect((await h.api(`/v1/jobs/${job.id}`)).status).toBe(404);
  });

  it("the heartbeat finishes a deletion whose D1 step failed; the job's runs went with its JobObject", async () => {
    const { d1, h } = faultyHarness();
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const run = await (await h.api(`/v1/jobs/${job.id}/run`, { method: "POST" })).json<{ id: string }>();
    d1.failNext({ match: deleteJobRow });
    expect((await h.api(`/v1/jobs/${job.id}`, { method: "DELETE" })).status).toBeGreaterThanOrEqual(500);
    expect((await h.api(`/v1/runs/${run.id}`)).status).toBe(404);

    await setRecordedNextRun(job.id, Date.now() - 5 * 60_000);
    await h.tick();

    expect(await storedJob(job.id)).toBeNull();
  });

  it("a change that raced the deletion cannot bring the job's clock back", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const readBeforeDeletion = await getJob(database(env.DB), job.id);
    if (!readBeforeDeletion) throw new Error("the job is not in D1");
    expect((await api(`/v1/jobs/${job.id}`, { method: "DELETE" })).status).toBe(204);

    // A slow PATCH that read the job before the deletion delivers its new version now.
    const synced = await jobStub(job.id).sync({ ...readBeforeDeletion, version: readBeforeDeletion.version + 1 });

    expect(synced.state).toBe("deleted");
    expect(await jobStub(job.id).inspect()).toMatchObject({ jobId: null, alarm: null });
  });

  it("a job created again with the same id after a deletion is a new job that fires", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    expect((await api(`/v1/jobs/${job.id}`, { method: "DELETE" })).status).toBe(204);
    const again = await jobs.yearly(url, { id: job.id });
    expect(again.state).toBe("active");
    await backdateNextFire(job.id, Date.now() - 100);
    await runDurableObjectAlarm(jobStub(job.id));
    expect(await jobRuns(job.id)).toHaveLength(1);
  });
});

describe("a deleted job's JobObject", () => {
  it("records nothing for a fire that was due, and starts nothing on run-now", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    await backdateNextFire(job.id, Date.now() - 100);
    expect((await api(`/v1/jobs/${job.id}`, { method: "DELETE" })).status).toBe(204);

    await runInDurableObject(jobStub(job.id), (instance: JobObject) => instance.alarm());
    expect(await jobStub(job.id).runNow(null)).toMatchObject({ run: null, reason: "not_found" });

    expect(await jobRuns(job.id)).toEqual([]);
    expect(await received(prefix)).toEqual([]);
    expect(await jobStub(job.id).inspect()).toMatchObject({ jobId: null, alarm: null });
  });
});
