import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { faultyD1, jobsDeletedAfterEach, useBindingsInJobObject } from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { received, receiverUrl } from "../helpers/receiver";
import { runReaches } from "../helpers/runs";

// Outages defer work, they never kill it: while D1 refuses every call, a due fire stays due
// and its JobObject keeps coming back for it with a back-off of its own (the platform gives up
// on a throwing alarm after six retries, about two minutes). Once D1 answers, the fire is
// recorded exactly once: run under the misfire rules, or missed.

const jobs = jobsDeletedAfterEach("outage");
const OUTAGE_MS = 15 * 60_000;

/**
 * Drives the job's alarm through an outage of D1 lasting `outageMs` of simulated time: each round
 * every D1 call fails, the alarm must not throw, must keep the fire due and set its next try; the
 * simulated clock moves by the delay it chose. Returns how many rounds it took.
 */
async function alarmThroughOutage(jobId: string, slot: number, outageMs: number): Promise<number> {
  const d1 = faultyD1();
  await useBindingsInJobObject(jobId, { DB: d1.db });
  let simulated = 0;
  let rounds = 0;
  while (simulated < outageMs) {
    d1.failNext();
    const before = Date.now();
    expect(await runDurableObjectAlarm(jobStub(jobId))).toBe(true);
    const { nextFire, alarm } = await jobStub(jobId).inspect();
    expect(nextFire).toBe(slot);
    expect(alarm).not.toBeNull();
    const delay = (alarm ?? 0) - before;
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(61_000);
    simulated += delay;
    rounds++;
  }
  expect(d1.broken.length).toBe(rounds);
  await useBindingsInJobObject(jobId, { DB: env.DB });
  return rounds;
}

describe("faults: D1 refuses every call for 15 minutes when a fire is due", () => {
  it("a fire still within misfire_grace_time when D1 answers again runs once", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { misfire_grace_time: 3600 });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const rounds = await alarmThroughOutage(job.id, slot, OUTAGE_MS);
    expect(rounds).toBeGreaterThanOrEqual(15);
    expect(await jobRuns(job.id)).toEqual([]);

    expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);
    const [run] = await jobRuns(job.id);
    expect(run).toMatchObject({ fire_slot: slot });
    await runReaches(run?.id ?? "", ["succeeded"]);
    // A repeated alarm for the same fire adds nothing.
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    expect(await jobRuns(job.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a fire that has become later than misfire_grace_time by then is recorded as missed, once, with no call", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { misfire_grace_time: 60 });
    // Due 15 minutes before D1 answers again: the outage's length, in real lateness.
    const slot = Date.now() - OUTAGE_MS;
    await backdateNextFire(job.id, slot);

    await alarmThroughOutage(job.id, slot, OUTAGE_MS);
    expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);

    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ fire_slot: slot, status: "missed" })]);
    expect(await received(prefix)).toEqual([]);
    const { nextFire, alarm } = await jobStub(job.id).inspect();
    expect(nextFire).toBeGreaterThan(Date.now());
    expect(alarm).toBe(nextFire);
  });
});
