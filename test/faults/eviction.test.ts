import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  expectFutureAlarm,
  finishedRunsOfSlot,
  hangingQueue,
  jobsDeletedAfterEach,
  loseAlarm,
  retryAlarm,
  setRecordedNextRun,
  useBindingsInJobObject,
} from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub, slowTarget } from "../helpers/jobs";
import { eventually, received, receiverUrl } from "../helpers/receiver";
import { harness, makeDue, mustStoredRun } from "../helpers/runs";

// Invariants: every accepted fire reaches a final state, and no fire slot
// executes twice. A Durable Object can be evicted (its memory dropped, its
// storage kept) or aborted mid-request at any await; its alarm is
// at-least-once, retried after a failure, and may be lost altogether, which
// the heartbeat repairs.

const jobs = jobsDeletedAfterEach("evict");

/** Evicts the job's JobObject (it must be running, so it is woken first). */
async function evict(jobId: string): Promise<void> {
  await jobStub(jobId).inspect();
  await evictDurableObject(jobStub(jobId));
}

describe("faults: a JobObject evicted around its alarm", () => {
  it("evicted before a due alarm: it reloads its schedule, the fire slot yields one run, and the job keeps a future alarm (every accepted fire reaches a final state)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await evict(job.id);

    expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);

    expect(await finishedRunsOfSlot(job.id, slot)).toEqual([{ id: expect.any(String), status: "succeeded" }]);
    expect(await received(prefix)).toHaveLength(1);
    await expectFutureAlarm(job.id);
  });

  it("evicted after running a fire whose alarm is then delivered again: no second run for the slot (no fire slot executes twice)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    await evict(job.id);

    // At-least-once alarms: the same fire is decided again by a fresh instance.
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));

    expect(await finishedRunsOfSlot(job.id, slot)).toEqual([{ id: expect.any(String), status: "succeeded" }]);
    expect(await received(prefix)).toHaveLength(1);
    await expectFutureAlarm(job.id);
  });

  it("evicted between two alarms while a slow target's run is in the queue's hands: the next alarm reloads it from the JobObject's runs, so max_instances still holds (no fire slot executes twice)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url, { max_instances: 1 });
    await useBindingsInJobObject(job.id, { TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
    await slowTarget(job.id);
    const first = Date.now() - 200;
    await backdateNextFire(job.id, first);
    await runDurableObjectAlarm(jobStub(job.id));
    const [queued] = await jobRuns(job.id);
    if (!queued) throw new Error("the first fire made no run");
    await evict(job.id);

    const second = Date.now() - 100;
    await backdateNextFire(job.id, second);
    await runDurableObjectAlarm(jobStub(job.id));

    expect((await jobRuns(job.id)).find((r) => r.fire_slot === second)?.status).toBe("skipped");
    await h.redeliver(h.lastSent(queued.id));
    expect(await mustStoredRun(queued.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    await expectFutureAlarm(job.id);
  });
});

describe("faults: a JobObject aborted in the middle of its fire", () => {
  it("aborted while calling a fast target from its alarm: the retried alarm makes the fire's attempt again, and the slot has one run (every accepted fire reaches a final state)", async () => {
    const { url, prefix } = receiverUrl("delay_ms=1000");
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const alarm = runDurableObjectAlarm(jobStub(job.id)).catch((error: unknown) => error);
    await eventually(async () => (await received(prefix)).length > 0, 5_000, "the alarm to call the target");
    await abortAllDurableObjects();
    expect(await alarm).toBeInstanceOf(Error);
    expect(await jobRuns(job.id)).toEqual([]);

    // The platform retries an alarm that did not complete: the attempt is made again, as after a vanished consumer.
    await retryAlarm(job.id);

    expect(await finishedRunsOfSlot(job.id, slot)).toEqual([{ id: expect.any(String), status: "succeeded" }]);
    expect(await received(prefix)).toHaveLength(2);
    await expectFutureAlarm(job.id);
  });

  it("aborted after storing a slow target's run but before sending its message: the retried alarm adds no second run, and its upkeep sends the message once it is overdue (every accepted fire reaches a final state; no fire slot executes twice)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const hanging = hangingQueue();
    await useBindingsInJobObject(job.id, { TASK_QUEUE: hanging.queue });
    await slowTarget(job.id);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const alarm = runDurableObjectAlarm(jobStub(job.id)).catch((error: unknown) => error);
    await eventually(async () => hanging.reached(), 5_000, "the alarm to send the run's message");
    await abortAllDurableObjects();
    expect(await alarm).toBeInstanceOf(Error);

    const h = harness();
    await useBindingsInJobObject(job.id, { TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
    await slowTarget(job.id);
    await retryAlarm(job.id);
    const runs = await jobRuns(job.id);
    expect(runs).toEqual([expect.objectContaining({ fire_slot: slot, status: "queued" })]);
    const [run] = runs;
    if (!run) throw new Error("no run for the slot");
    expect(h.sentFor(run.id)).toEqual([]);

    // A minute overdue, the JobObject's upkeep sends it again.
    await makeDue(run.id, 2 * 60_000);
    await retryAlarm(job.id);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await jobRuns(job.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });
});

describe("faults: a JobObject evicted with its alarm lost", () => {
  it("the heartbeat finds the overdue job in D1, re-arms its alarm, and the fire runs once (every accepted fire reaches a final state)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 2 * 60_000;
    await backdateNextFire(job.id, slot);
    await setRecordedNextRun(job.id, slot);
    await loseAlarm(job.id);
    await evict(job.id);
    expect((await jobStub(job.id).inspect()).alarm).toBeNull();

    await harness().tick();

    // The re-armed alarm is due at once and fires by itself.
    await eventually(async () => ((await jobStub(job.id).inspect()).nextFire ?? 0) > Date.now(), 5_000, "the re-armed alarm to fire");
    expect(await finishedRunsOfSlot(job.id, slot)).toEqual([{ id: expect.any(String), status: "succeeded" }]);
    expect(await received(prefix)).toHaveLength(1);
    await expectFutureAlarm(job.id);
  });
});
