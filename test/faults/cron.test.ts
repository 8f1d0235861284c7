import { describe, expect, it } from "vitest";
import { OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import {
  cronTick,
  expectFutureAlarm,
  jobObjectsFailingFor,
  jobsDeletedAfterEach,
  loseAlarm,
  recordedHeartbeat,
  setRecordedNextRun,
} from "../helpers/faults";
import { backdateNextFire, jobRuns, jobStub } from "../helpers/jobs";
import { simulatedClock } from "../helpers/outage";
import { changeOwnedRun, tasksWithKey, useBindingsInTaskShards } from "../helpers/owners";
import { eventually, received, receiverUrl } from "../helpers/receiver";
import {
  expireLease,
  type Harness,
  harness,
  MANUAL_RETRY,
  makeDue,
  mustStoredRun,
  NO_CHANGE,
  runReaches,
  statsDelta,
  taskStats,
} from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. Cron Triggers promise no exactly-once
// delivery: a minute may tick twice (even at once) or not at all for a
// while. A tick is a nudge keyed by its scheduledTime.

const MINUTE = 60_000;
const STATIC_CRON = "17 3 * * *";

const jobs = jobsDeletedAfterEach("cron");

/** The current minute, as the Cron Trigger names it. */
const thisMinute = () => Math.floor(Date.now() / MINUTE) * MINUTE;

/** Messages sent for a run after the first `skip` of them. */
const sentAfter = (h: Harness, runId: string, skip: number) => h.sentFor(runId).slice(skip);

async function staticRuns(slot: number): Promise<{ id: string; status: string }[]> {
  return (await tasksWithKey(`static:${STATIC_CRON}:${slot}`)).map(({ id, status }) => ({ id, status }));
}

/** A harness whose queues also record what the task shards send by themselves (their upkeep). */
async function shardHarness(overrides: Parameters<typeof harness>[0] = {}): Promise<Harness> {
  const h = harness(overrides);
  await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
  return h;
}

// A task's lost message and vanished consumer are its shard's to repair (its upkeep, which each
// tick also nudges, so a shard whose own alarm was lost still repairs them).

describe("faults: the Cron Trigger fires twice for one minute", () => {
  it("the same tick delivered twice re-sends a lost message once and records the heartbeat (no run executes twice unless a retry was due)", async () => {
    const h = await shardHarness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await makeDue(run.id, 10 * MINUTE); // its message was lost ten minutes ago
    const minute = thisMinute();

    await cronTick(h.env, minute);
    await cronTick(h.env, minute);

    expect(sentAfter(h, run.id, 1).map((m) => m.body)).toEqual([{ run_id: run.id, attempt: 1 }]);
    expect(await recordedHeartbeat()).toBe(minute);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("two concurrent invocations of the same tick may both re-send a lost message, but the run executes once and is counted once (no run executes twice unless a retry was due)", async () => {
    const h = await shardHarness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await makeDue(run.id, 10 * MINUTE);
    const before = await taskStats();
    const minute = thisMinute();

    await Promise.all([cronTick(h.env, minute), cronTick(h.env, minute)]);

    const resent = sentAfter(h, run.id, 1);
    expect(resent.length).toBeGreaterThanOrEqual(1);
    for (const message of resent) await h.redeliver(message);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    expect(await recordedHeartbeat()).toBe(minute);
  });

  it("two concurrent invocations reclaiming the same expired lease send one retry (no run executes twice unless a retry was due)", async () => {
    const h = await shardHarness();
    const { url, prefix } = receiverUrl("delay_ms=300");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const lost = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);
    // Long enough ago that no result of that attempt can still be on its way.
    await expireLease(run.id, OUTCOME_GRACE_MS + 1);

    await Promise.all([cronTick(h.env, thisMinute()), cronTick(h.env, thisMinute())]);

    expect(sentAfter(h, run.id, 1).map((m) => m.body)).toEqual([{ run_id: run.id, attempt: 2 }]);
    await lost;
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });

  it("a static cron-bound handler ticked twice, then twice at once, for the same minute has one run (no run executes twice)", async () => {
    const h = harness();
    const slot = Date.UTC(2026, 0, 5, 3, 17);

    await cronTick(h.env, slot, STATIC_CRON);
    await cronTick(h.env, slot, STATIC_CRON);
    await Promise.all([cronTick(h.env, slot, STATIC_CRON), cronTick(h.env, slot, STATIC_CRON)]);

    const runs = await staticRuns(slot);
    expect(runs).toHaveLength(1);
    const [run] = runs;
    if (!run) throw new Error("no static run");
    expect(h.sentFor(run.id)).toHaveLength(1);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
  });

  it("a late tick for an earlier minute does not move the recorded heartbeat back", async () => {
    const h = harness();
    const minute = thisMinute();
    await cronTick(h.env, minute);
    await cronTick(h.env, minute - 5 * MINUTE);
    expect(await recordedHeartbeat()).toBe(minute);
  });
});

describe("faults: the Cron Trigger does not fire for ten minutes", () => {
  /** A yearly job whose alarm was lost ten minutes before its fire came due (the next tick is the first since). */
  async function jobWithLostAlarm(url: string, misfireGraceSeconds: number) {
    const { id } = await jobs.yearly(url, { misfire_grace_time: misfireGraceSeconds });
    const slot = Date.now() - 10 * MINUTE;
    await backdateNextFire(id, slot);
    await setRecordedNextRun(id, slot);
    await loseAlarm(id);
    return { id, slot };
  }

  /** Waits until the re-armed alarm fired by itself and moved the job's clock past now. */
  async function rearmedAlarmFired(jobId: string): Promise<void> {
    await eventually(async () => ((await jobStub(jobId).inspect()).nextFire ?? 0) > Date.now(), 5_000, "the re-armed alarm to fire");
  }

  it("the next tick re-arms a job whose alarm was lost; a fire later than misfire_grace_time is recorded as missed and not run", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobWithLostAlarm(url, 60);
    const minute = thisMinute();

    await cronTick(harness().env, minute);
    await rearmedAlarmFired(job.id);

    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ fire_slot: job.slot, status: "missed" })]);
    expect(await received(prefix)).toHaveLength(0);
    await expectFutureAlarm(job.id);
    expect(await recordedHeartbeat()).toBe(minute);
  });

  it("the next tick re-arms a job whose alarm was lost; a fire within misfire_grace_time runs once (every accepted fire reaches a final state)", async () => {
    const { url, prefix } = receiverUrl();
    const job = await jobWithLostAlarm(url, 3600);

    await cronTick(harness().env, thisMinute());
    await rearmedAlarmFired(job.id);
    // A second tick in the same minute finds nothing left to repair.
    await cronTick(harness().env, thisMinute());

    const runs = await jobRuns(job.id);
    expect(runs).toEqual([expect.objectContaining({ fire_slot: job.slot })]);
    const [run] = runs;
    if (!run) throw new Error("no run for the slot");
    await runReaches(run.id, ["succeeded"]);
    expect(await received(prefix)).toHaveLength(1);
    await expectFutureAlarm(job.id);
  });

  it("the next tick nudges task shards whose alarms were lost too: a lost message is re-sent at once, and a vanished consumer's attempt is taken back OUTCOME_GRACE_MS after the shard resumes, since its outcome may still be on its way (every accepted task reaches a final state)", async () => {
    const clock = simulatedClock();
    const h = await shardHarness();
    const lostMessage = receiverUrl();
    const lostConsumer = receiverUrl();
    const waiting = await h.enqueue({ target: { type: "http", url: lostMessage.url }, retry: MANUAL_RETRY });
    const running = await h.enqueue({ target: { type: "http", url: lostConsumer.url }, retry: MANUAL_RETRY });
    // A consumer claimed `running` (a minute's lease) and vanished with its message; then nothing
    // woke for ten minutes: no Cron Trigger, and the shards' alarms were lost with it.
    await changeOwnedRun(running.id, { status: "running", attempt: 1, startedAt: clock.now(), leaseExpiresAt: clock.now() + MINUTE });
    clock.advance(10 * MINUTE);
    const before = await taskStats();

    await cronTick(h.env, thisMinute());
    await cronTick(h.env, thisMinute());

    expect(sentAfter(h, waiting.id, 1).map((m) => m.body)).toEqual([{ run_id: waiting.id, attempt: 1 }]);
    expect(sentAfter(h, running.id, 1)).toEqual([]);
    clock.advance(OUTCOME_GRACE_MS - MINUTE);
    await cronTick(h.env, thisMinute());
    expect(sentAfter(h, running.id, 1)).toEqual([]);
    clock.advance(MINUTE);
    await cronTick(h.env, thisMinute());
    expect(sentAfter(h, running.id, 1).map((m) => m.body)).toEqual([{ run_id: running.id, attempt: 2 }]);

    await h.redeliver(h.lastSent(waiting.id));
    await h.redeliver(h.lastSent(running.id));
    expect(await mustStoredRun(waiting.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await mustStoredRun(running.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(lostMessage.prefix)).toHaveLength(1);
    expect(await received(lostConsumer.prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 2 });
  });
});

describe("faults: one JobObject keeps failing", () => {
  it("the heartbeat still re-sends a task's lost message (every accepted task reaches a final state)", async () => {
    const { id } = await jobs.yearly(receiverUrl().url);
    // Its fire is overdue in D1, so every tick asks its (broken) JobObject to re-arm.
    await setRecordedNextRun(id, Date.now() - 2 * MINUTE);
    const h = await shardHarness({ JOB_OBJECT: jobObjectsFailingFor(id) });
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await makeDue(run.id, 10 * MINUTE);

    // The tick may report the broken JobObject; the task's recovery must not depend on it.
    await cronTick(h.env, thisMinute()).catch(() => undefined);
    await cronTick(h.env, thisMinute() + MINUTE).catch(() => undefined);

    expect(sentAfter(h, run.id, 1).map((m) => m.body)).toEqual([{ run_id: run.id, attempt: 1 }]);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });
});
