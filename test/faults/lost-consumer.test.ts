import { describe, expect, it } from "vitest";
import { OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { cronTick } from "../helpers/faults";
import { simulatedClock } from "../helpers/outage";
import { changeOwnedRun, ownerAlarmOf, runOwnerAlarm, shardOf, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import {
  expireLease,
  type Harness,
  harness,
  MANUAL_RETRY,
  mustStoredRun,
  NO_CHANGE,
  runReaches,
  statsDelta,
  taskStats,
} from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. A consumer can die after claiming a run (an
// isolate evicted, a deploy): the run is left `running` under a lease. It is
// taken back either by its own message, which the queue redelivers since
// nobody acked it, once the lease has expired; or, if that message is gone
// too, by its task shard's upkeep once the lease expired more than
// OUTCOME_GRACE_MS ago (an outcome still on its way lands first).

/** A harness whose task shard (the one keeping `runId`) sends through the harness's queues. */
async function shardSendsThrough(h: Harness, runId: string): Promise<void> {
  await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(runId)]);
}

/** Setup only: a consumer claimed the run's first attempt and died before calling the target; its lease ended `leaseEndedMs` ago. */
async function claimedByADeadConsumer(runId: string, leaseEndedMs: number): Promise<void> {
  const leaseEnd = Date.now() - leaseEndedMs;
  await changeOwnedRun(runId, {
    status: "running",
    attempt: 1,
    startedAt: leaseEnd - 60_000,
    leaseExpiresAt: leaseEnd,
    availableAt: leaseEnd - 60_000,
  });
}

describe("faults: a consumer that dies after starting a run", () => {
  it("a consumer hung on its target: the queue's redelivery of its message takes the attempt back once the lease expired, and the retry succeeds; the target saw at most two requests (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=400");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const before = await taskStats();
    const message = h.lastSent(run.id);
    const hung = h.redeliver(message);
    await runReaches(run.id, ["running"]);
    await expireLease(run.id);

    await h.redeliver(message);
    const retry = h.lastSent(run.id);
    expect(retry.body).toEqual({ run_id: run.id, attempt: 2 });
    await h.redeliver(retry);
    await hung;

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect((await received(prefix)).length).toBeLessThanOrEqual(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a run left running whose message is gone too: the shard's upkeep leaves its expired lease alone for OUTCOME_GRACE_MS, then takes the attempt back, and its retry calls the target once (every accepted task reaches a final state)", async () => {
    const clock = simulatedClock();
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await shardSendsThrough(h, run.id);
    await claimedByADeadConsumer(run.id, 60_000);
    const leaseEnd = (await mustStoredRun(run.id)).lease_expires_at ?? 0;

    // A second before OUTCOME_GRACE_MS has passed since the lease ended, the attempt is left alone.
    clock.advance(leaseEnd + OUTCOME_GRACE_MS - 1_000 - clock.now());
    expect(await runOwnerAlarm(run.id)).toBe(true);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual(leaseEnd + OUTCOME_GRACE_MS);

    clock.advance(1_000);
    expect(await runOwnerAlarm(run.id)).toBe(true);
    const reclaimed = await mustStoredRun(run.id);
    expect(reclaimed).toMatchObject({ status: "retrying", attempt: 1 });
    expect(JSON.stringify(reclaimed.error)).toContain("lease expired");
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("the dead consumer's message, redelivered by the queue after the shard's upkeep took the attempt back and the retry succeeded, does not run the target again (no run executes twice unless a retry was due)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const first = h.lastSent(run.id);
    await shardSendsThrough(h, run.id);
    await claimedByADeadConsumer(run.id, OUTCOME_GRACE_MS + 1);
    expect(await runOwnerAlarm(run.id)).toBe(true);
    await h.redeliver(h.lastSent(run.id));
    const before = await taskStats();

    const late = await h.redeliver(first);

    expect(late.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual(NO_CHANGE);
  });

  it("a consumer that died on the run's last attempt: the shard's upkeep marks the run dead after OUTCOME_GRACE_MS and counts it once, even when it runs twice and the message comes back (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    await shardSendsThrough(h, run.id);
    await claimedByADeadConsumer(run.id, OUTCOME_GRACE_MS + 1);
    const before = await taskStats();

    expect(await runOwnerAlarm(run.id)).toBe(true);
    await runOwnerAlarm(run.id);
    await h.redeliver(h.lastSent(run.id));

    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 1 });
    expect(JSON.stringify(dead.error)).toContain("lease expired");
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(0);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });

  it("a live attempt is not taken back: a heartbeat tick and the shard's upkeep while the target is still answering leave it running, and it runs once (no run executes twice unless a retry was due)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=400");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await shardSendsThrough(h, run.id);
    const inFlight = h.redeliver(h.lastSent(run.id));
    const running = await runReaches(run.id, ["running"]);
    expect(running.lease_expires_at).toBeGreaterThan(Date.now() + 30_000);

    await cronTick(h.env, Date.now());
    await runOwnerAlarm(run.id);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    await inFlight;

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });
});
