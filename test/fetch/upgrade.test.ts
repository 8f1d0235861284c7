import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { runs } from "../../src/db/schema";
import { newId } from "../../src/ids";
import type { NewRun } from "../../src/runs/store";
import type { JobObject } from "../../src/scheduling/job-object";
import { jobsDeletedAfterEach } from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";
import { harness, MANUAL_RETRY, TASK_QUEUE } from "../helpers/runs";

// An upgrade loses nothing. Runs written before runs moved to their owners stay in D1 (`run_…`
// ids): they stay readable through the API until they age out, a run in flight finishes through
// the old path (its queue message names it), and a JobObject that held a slot for one keeps it
// until that run ends. These tests write such runs into D1 as the previous version did.

const jobs = jobsDeletedAfterEach("upgrade");

/** Test setup only: a run as the previous version wrote it into D1. */
async function legacyRun(values: Partial<NewRun> & { url: string }): Promise<string> {
  const now = Date.now();
  const { url, ...rest } = values;
  const id = rest.id ?? newId("run", now - 1000);
  await database(env.DB)
    .insert(runs)
    .values({
      id,
      jobId: null,
      status: "queued",
      attempt: 0,
      maxAttempts: 3,
      target: { type: "http", method: "POST", url },
      retry: MANUAL_RETRY,
      timeout: 30,
      priority: "default",
      scheduledFor: now - 1000,
      availableAt: now - 1000,
      createdAt: now - 1000,
      updatedAt: now - 1000,
      ...rest,
    });
  return id;
}

describe("runs D1 kept before the upgrade", () => {
  it("stay readable: GET /v1/runs/:id, /v1/tasks/:id, /attempts, and the task listing after the shards' runs", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const old = await legacyRun({ url, status: "succeeded", attempt: 1, finishedAt: Date.now() - 500, result: { ok: true } });
    const fresh = await h.enqueue({ target: { type: "http", url } });

    expect(await (await h.api(`/v1/runs/${old}`)).json()).toMatchObject({ id: old, status: "succeeded", result: { ok: true } });
    expect((await h.api(`/v1/tasks/${old}`)).status).toBe(200);
    expect((await h.api(`/v1/runs/${old}/attempts`)).status).toBe(200);

    // The owners' runs come first (newest first), then D1's, older than any of them.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; next_cursor: string | null } = await (
        await h.api(`/v1/runs?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)
      ).json();
      seen.push(...page.items.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor !== null && seen.length < 10_000);
    expect(seen.indexOf(fresh.id)).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf(old)).toBeGreaterThan(seen.indexOf(fresh.id));
  });

  it("a run in flight when the new version deployed finishes through the old path: its message names it", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const old = await legacyRun({ url });

    await h.deliver(TASK_QUEUE, [{ run_id: old, attempt: 1 }]);

    expect(await (await h.api(`/v1/runs/${old}`)).json()).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a failed run D1 kept is listed with every owner's failures, after them", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const old = await legacyRun({ url, status: "failed", attempt: 1, finishedAt: Date.now() - 500, error: { message: "old failure" } });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; next_cursor: string | null } = await (
        await h.api(`/v1/runs?status=failed&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)
      ).json();
      seen.push(...page.items.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor !== null && seen.length < 10_000);
    expect(seen).toContain(old);
  });
});

describe("a JobObject from before the upgrade", () => {
  it("keeps the slot a D1 run of its job held until that run ends, then fires again; the job's listing shows both", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { max_instances: 1 });
    const old = await legacyRun({ url, jobId: job.id, status: "queued" });
    // As the previous version left it: a lease under the D1 run's id, in the object's storage.
    await runInDurableObject(jobStub(job.id), async (instance: JobObject, state) => {
      const leases = (instance as unknown as { leases: Map<string, number> }).leases;
      leases.set(old, Date.now() + 3_600_000);
      await state.storage.put("leases", Object.fromEntries(leases));
    });

    await backdateNextFire(job.id, Date.now() - 200);
    await runDurableObjectAlarm(jobStub(job.id));
    expect((await jobRuns(job.id)).map((r) => r.status)).toEqual(["skipped"]);

    // The D1 run finishes through the old path, which tells its JobObject.
    await h.deliver(TASK_QUEUE, [{ run_id: old, attempt: 1 }]);
    expect((await jobStub(job.id).inspect()).leases).toEqual([]);

    await backdateNextFire(job.id, Date.now() - 100);
    await runDurableObjectAlarm(jobStub(job.id));
    expect((await jobRuns(job.id)).map((r) => r.status)).toEqual(["skipped", "succeeded"]);
    expect(await received(prefix)).toHaveLength(2);

    const listed = await (await h.api(`/v1/jobs/${job.id}/runs?limit=10`)).json<{ items: { id: string }[] }>();
    expect(listed.items.map((r) => r.id).slice(-1)).toEqual([old]);
  });
});
