import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { jobsDeletedAfterEach, useBindingsInJobObject } from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub, slowTarget } from "../helpers/jobs";
import { changeOwnedRun } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, MANUAL_RETRY, makeDue, mustStoredRun } from "../helpers/runs";

// max_instances holds for a run's whole life: a job's runs live in its JobObject, and a run
// holds its slot until it is final, whether its attempts are made from the JobObject's alarm
// (a fast target) or by the queue consumer (a slow one), however long it waits or retries.

const jobs = jobsDeletedAfterEach("lease");

/** A max_instances 1 job with its first fire made; `viaQueue` sends its runs to the harness's queues (the test delivers them). */
async function jobWithFirstRun(h: Harness, query: string, { viaQueue = false, overrides = {} as Record<string, unknown> } = {}) {
  const { url, prefix } = receiverUrl(query);
  const job = await jobs.yearly(url, { max_instances: 1, timeout: 1, retry: MANUAL_RETRY, ...overrides });
  await useBindingsInJobObject(job.id, { TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
  if (viaQueue) await slowTarget(job.id);
  await backdateNextFire(job.id, Date.now() - 200);
  await runDurableObjectAlarm(jobStub(job.id));
  const [first] = await jobRuns(job.id);
  if (!first) throw new Error("the first fire made no run");
  return { job, first, prefix };
}

/** The next fire falls due while the first run lives on; returns the statuses of the job's runs, oldest first. */
async function nextFireWhileFirstLives(jobId: string): Promise<string[]> {
  await backdateNextFire(jobId, Date.now() - 100);
  await runDurableObjectAlarm(jobStub(jobId));
  return (await jobRuns(jobId)).map((r) => r.status);
}

describe("max_instances holds for a run's whole life", () => {
  it("a fast target's run retrying from the JobObject's alarm keeps the slot: the next fire is skipped, not started beside it", async () => {
    const h = harness();
    const { job, first, prefix } = await jobWithFirstRun(h, "status=503");
    expect(await mustStoredRun(first.id)).toMatchObject({ status: "retrying", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    expect(h.sentFor(first.id)).toEqual([]); // made from the alarm: no queue message

    expect(await nextFireWhileFirstLives(job.id)).toEqual(["retrying", "skipped"]);
    expect((await jobStub(job.id).inspect()).leases).toEqual([first.id]);
  });

  it("a slow target's run waiting behind a queue backlog keeps the slot", async () => {
    const h = harness();
    const { job, first } = await jobWithFirstRun(h, "", { viaQueue: true });
    expect(await mustStoredRun(first.id)).toMatchObject({ status: "queued" });
    expect(h.sentFor(first.id)).toHaveLength(1);

    expect(await nextFireWhileFirstLives(job.id)).toEqual(["queued", "skipped"]);
  });

  it("the slot is released when the run is final: the next fire then runs", async () => {
    const h = harness();
    const { job, first } = await jobWithFirstRun(h, "status=503", { overrides: { retry: { ...MANUAL_RETRY, max_attempts: 2 } } });
    await makeDue(first.id);
    // The retry is due: the JobObject's alarm makes it (the receiver still answers 503).
    await runDurableObjectAlarm(jobStub(job.id));
    expect(await mustStoredRun(first.id)).toMatchObject({ status: "dead", attempt: 2 });
    expect((await jobStub(job.id).inspect()).leases).toEqual([]);

    expect((await nextFireWhileFirstLives(job.id)).slice(1)).toEqual(["retrying"]);
  });

  it("a run whose consumer vanished keeps the slot until the JobObject takes it back; its retry runs, and the next fire is not started beside it", async () => {
    const h = harness();
    const { job, first } = await jobWithFirstRun(h, "", { viaQueue: true });
    // Test setup: a consumer claimed attempt 1, then vanished; its own lease ran out long enough
    // ago that no result of it can still be on its way.
    const past = Date.now() - OUTCOME_GRACE_MS - 1;
    await changeOwnedRun(first.id, { status: "running", attempt: 1, startedAt: past - 40_000, leaseExpiresAt: past });

    expect(await nextFireWhileFirstLives(job.id)).toEqual(["retrying", "skipped"]);
    const retry = h.lastSent(first.id);
    expect(retry.body).toMatchObject({ run_id: first.id, attempt: 2 });
    await h.redeliver(retry);
    expect(await mustStoredRun(first.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect((await jobStub(job.id).inspect()).leases).toEqual([]);
  });

  it("run-now also waits for a run that lives on", async () => {
    const h = harness();
    const { job } = await jobWithFirstRun(h, "status=503");

    const res = await h.api(`/v1/jobs/${job.id}/run`, { method: "POST" });
    expect(res.status).toBe(409);
    expect((await jobRuns(job.id)).map((r) => r.status)).toEqual(["retrying"]);
  });
});
