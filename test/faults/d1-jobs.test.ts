import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  expectFutureAlarm,
  faultyD1,
  faultyHarness,
  finishedRunsOfSlot,
  jobStats,
  jobsDeletedAfterEach,
  recordSchedule,
  retryAlarm,
  storedJob,
  useBindingsInJobObject,
} from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";

// Invariants: every accepted job gets its fires, each fire slot runs at most
// once, every run reaches a final state and is counted once, when D1 fails
// transiently under the jobs API or a JobObject. A job's runs live in its
// JobObject, so D1 only carries the job's definition, its promise to report in
// (next_run_at) and its statistics.

const jobs = jobsDeletedAfterEach("fault-d1");

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

  it("a D1 error when the alarm records the job's promise loses nothing: the fire's run is kept by the JobObject and runs, and the promise is written by the next round (no fire slot executes twice)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const d1 = faultyD1();
    d1.failNext({ match: recordSchedule });
    await useBindingsInJobObject(job.id, { DB: d1.db });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);
    expect(d1.broken).toEqual([[expect.objectContaining({ sql: expect.stringMatching(/^update "jobs"/) })]]);
    expect(await finishedRunsOfSlot(job.id, slot)).toEqual([{ id: expect.any(String), status: "succeeded" }]);
    expect(await received(prefix)).toHaveLength(1);

    // The next round writes the promise the failed one could not.
    await retryAlarm(job.id);
    await expectFutureAlarm(job.id);
    expect(await jobRuns(job.id)).toHaveLength(1);
  });

  it("a D1 error while the JobObject adds its runs to the statistics delays them and counts each run once: the flush is tried again later", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    const d1 = faultyD1();
    await useBindingsInJobObject(job.id, { DB: d1.db });
    d1.failNext({ match: (s) => s.sql.startsWith("INSERT INTO stats_flushes"), effect: "lost-request" });

    expect(await failureOf(jobStub(job.id).flushStats(job.id))).toBeInstanceOf(Error);
    await jobStub(job.id).flushStats(job.id);
    await jobStub(job.id).flushStats(job.id);

    expect(await jobStats(job.id)).toMatchObject({ succeeded: 1 });
  });

  it("a flush whose answer was lost after D1 applied it adds nothing twice when tried again", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    await backdateNextFire(job.id, Date.now() - 100);
    await runDurableObjectAlarm(jobStub(job.id));
    const d1 = faultyD1();
    await useBindingsInJobObject(job.id, { DB: d1.db });
    d1.failNext({ match: (s) => s.sql.startsWith("INSERT INTO stats_flushes"), effect: "lost-response" });

    expect(await failureOf(jobStub(job.id).flushStats(job.id))).toBeInstanceOf(Error);
    await jobStub(job.id).flushStats(job.id);

    expect(await jobStats(job.id)).toMatchObject({ succeeded: 1 });
  });
});

/** What a call threw (undefined if it did not): handles the RPC's rejection where it arrives. */
async function failureOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (error: unknown) => error,
  );
}
