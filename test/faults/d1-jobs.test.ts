import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  binding,
  expectFutureAlarm,
  faultyD1,
  faultyHarness,
  insertRun,
  jobStats,
  jobsDeletedAfterEach,
  recordSchedule,
  retryAlarm,
  rollupStats,
  storedJob,
  useBindingsInJobObject,
} from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";
import { mustStoredRun, runReaches } from "../helpers/runs";

// Invariants: every accepted job gets its fires, each fire slot runs at most
// once, and every run reaches a final state — when D1 fails transiently under
// the jobs API or a JobObject's alarm. A throwing alarm is retried by the
// platform; a consumer that throws has its message redelivered.

const jobs = jobsDeletedAfterEach("fault-d1");

/**
 * The alarm could not record its fire: it does not throw (the platform would give up after six
 * retries), it keeps the fire due and sets its own alarm a couple of seconds later.
 */
async function expectAlarmBacksOff(jobId: string, slot: number): Promise<void> {
  const before = Date.now();
  expect(await runDurableObjectAlarm(jobStub(jobId))).toBe(true);
  const state = await jobStub(jobId).inspect();
  expect(state.nextFire).toBe(slot);
  expect(state.alarm).toBeGreaterThanOrEqual(before + 1_000);
  expect(state.alarm).toBeLessThanOrEqual(Date.now() + 2_000);
}

describe("faults: a D1 error in the jobs API and in a JobObject's alarm", () => {
  it("POST /v1/jobs whose insert was applied but whose answer was lost answers 503; the next heartbeat arms the job's clock (every accepted job gets its fires)", async () => {
    const { d1, h } = faultyHarness();
    const { url } = receiverUrl();
    const id = jobs.newId();
    d1.failNext({ match: (s) => s.sql.startsWith('insert into "jobs"'), effect: "lost-response" });

    const res = await h.api("/v1/jobs", {
      method: "POST",
      json: { id, trigger: { type: "cron", expression: "0 0 1 1 *" }, target: { type: "http", url } },
    });
    expect(res.status).toBe(503);
    expect(await storedJob(id)).toMatchObject({ state: "active", next_run_at: null });
    expect((await jobStub(id).inspect()).alarm).toBeNull();

    await h.tick();

    await expectFutureAlarm(id);
  });

  it("a D1 error after the alarm wrote the fire's run leaves the fire due and the alarm comes back on its own; its retry adds no second run (no fire slot executes twice)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const d1 = faultyD1();
    d1.failNext({ match: insertRun, effect: "lost-response" });
    await useBindingsInJobObject(job.id, { DB: d1.db });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    await expectAlarmBacksOff(job.id, slot);
    expect(d1.broken).toHaveLength(1);
    await retryAlarm(job.id);

    const runs = await jobRuns(job.id);
    expect(runs).toEqual([expect.objectContaining({ fire_slot: slot })]);
    await expectFutureAlarm(job.id);
    expect(await received(prefix)).toHaveLength(0);
  });

  it("a D1 error in the round trip that writes the fire's run and the job's next fire leaves the fire due and the alarm comes back on its own; its retry records both and the slot keeps its one run (no fire slot executes twice)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const d1 = faultyD1();
    d1.failNext({ match: recordSchedule });
    await useBindingsInJobObject(job.id, { DB: d1.db });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    await expectAlarmBacksOff(job.id, slot);
    expect(d1.broken).toEqual([
      [
        expect.objectContaining({ sql: expect.stringMatching(/^insert into "runs"/) }),
        expect.objectContaining({ sql: expect.stringMatching(/^update "jobs"/) }),
      ],
    ]);
    expect(await jobRuns(job.id)).toEqual([]);
    await retryAlarm(job.id);

    const runs = await jobRuns(job.id);
    expect(runs).toEqual([expect.objectContaining({ fire_slot: slot })]);
    await expectFutureAlarm(job.id);
    const [run] = runs;
    if (!run) throw new Error("no run for the slot");
    await runReaches(run.id, ["succeeded"]);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a job run recorded as finished just before a D1 error still frees its job's max_instances slot when its outcome's message arrives, so the next due fire runs instead of being skipped (every accepted fire reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { max_instances: 1 });
    // The JobObject sends to the harness's recording queues, so the test delivers the job's runs.
    await useBindingsInJobObject(job.id, { TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
    const started = await h.api(`/v1/jobs/${job.id}/run`, { method: "POST" });
    expect(started.status).toBe(202);
    const run = await started.json<{ id: string }>();
    const message = h.lastSent(run.id);
    d1.failNext({ match: binding(run.id, rollupStats), effect: "lost-response" });

    const faulty = await h.redeliver(message);
    // The result travels in a message of its own, which finds it recorded and sends the follow-up.
    expect(faulty.retryMessages).toEqual([]);
    const outcome = h.lastSent(run.id);
    expect(outcome.body.outcome).toMatchObject({ status: "succeeded" });
    await h.redeliver(outcome);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    expect(await jobStats(job.id)).toMatchObject({ succeeded: 1, skipped: 0 });

    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));

    expect((await jobRuns(job.id)).filter((r) => r.fire_slot === slot)).toEqual([expect.objectContaining({ status: "queued" })]);
  });
});
