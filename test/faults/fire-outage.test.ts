import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { faultyD1, jobStats, jobsDeletedAfterEach, useBindingsInJobObject } from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";

// Outages defer work, they never kill it. A job's runs live in its JobObject, so a D1 outage of
// 15 minutes does not stop or delay its fires: each due fire runs on time and is recorded once,
// by the JobObject. What the fires tell D1 (the job's promise to report in, its statistics)
// waits in the JobObject and reaches D1 once it answers, counted once. The alarm never throws
// for an outage (the platform gives up on an alarm after six retries, about two minutes).

const jobs = jobsDeletedAfterEach("outage");
const MINUTE = 60_000;

describe("faults: D1 refuses every call for 15 minutes while a job fires every minute", () => {
  it("every due fire runs on time, once, and the statistics count each once D1 answers again", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { misfire_grace_time: 60 });
    const d1 = faultyD1();
    d1.down(); // every D1 call fails, reads included
    await useBindingsInJobObject(job.id, { DB: d1.db });

    // Fifteen fires a minute apart, each due as its alarm runs (the test moves the clock the job waits for).
    for (let minute = 0; minute < 15; minute++) {
      await backdateNextFire(job.id, Date.now() - 100);
      expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);
    }

    expect(d1.broken.length).toBeGreaterThan(0);
    const runs = await jobRuns(job.id);
    expect(runs).toHaveLength(15);
    expect(runs.every((r) => r.status === "succeeded")).toBe(true);
    expect(await received(prefix)).toHaveLength(15);
    // Still waiting for a fire, not backing off: the outage did not touch the job's clock.
    const { alarm, nextFire } = await jobStub(job.id).inspect();
    expect(alarm).toBeGreaterThan(Date.now() + MINUTE);
    expect(nextFire).toBeGreaterThan(Date.now());

    d1.heal();
    await jobStub(job.id).flushStats(job.id);
    await jobStub(job.id).flushStats(job.id);
    expect(await jobStats(job.id)).toMatchObject({ succeeded: 15, missed: 0 });
  });

  it("the job's promise to report in (jobs.next_run_at) is written once D1 answers, by the next alarm", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url, { trigger: { type: "interval", seconds: 60, start_date: "2020-01-01T00:00:00Z" } });
    const d1 = faultyD1();
    d1.down();
    await useBindingsInJobObject(job.id, { DB: d1.db });
    await backdateNextFire(job.id, Date.now() - 100);
    await runDurableObjectAlarm(jobStub(job.id));
    const { nextFire } = await jobStub(job.id).inspect();
    const stale = await env.DB.prepare("SELECT next_run_at FROM jobs WHERE id = ?").bind(job.id).first<number>("next_run_at");
    expect(stale).toBeLessThan(Date.now());

    d1.heal();
    await runDurableObjectAlarm(jobStub(job.id));

    const promised = await env.DB.prepare("SELECT next_run_at FROM jobs WHERE id = ?").bind(job.id).first<number>("next_run_at");
    expect(promised).toBeGreaterThanOrEqual(nextFire ?? Number.POSITIVE_INFINITY);
  });
});
