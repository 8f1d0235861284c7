import { describe, expect, it } from "vitest";
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { faultyShardHarness } from "../helpers/faults";
import { OutagePlatform, simulatedClock } from "../helpers/outage";
import { changeOwnedRun, ownerAlarmOf, runOwnerAlarm, shardOf, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, MANUAL_RETRY, makeDue, mustStoredRun, NO_CHANGE, statsDelta, TASK_QUEUE, taskStats } from "../helpers/runs";

// Invariant: work stuck by a lost answer or a lost message recovers within a
// minute or two: the queue's own redelivery takes back an attempt whose lease
// expired, and the task shard's upkeep (its alarm) re-sends a waiting run's
// lost message a minute after it was due.

/** The task shard keeping `runId` sends through the harness's queues (and uses `bindings`) for this test. */
async function shardSendsThrough(h: Harness, runId: string, bindings = {}): Promise<void> {
  await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE, ...bindings }, [shardOf(runId)]);
}

describe("faults: a lost answer or a lost message", () => {
  it("the claim's answer was lost: the redelivery comes back just after the lease expires and takes the attempt back itself, so it succeeds about a minute later with no heartbeat and no shard upkeep at all", async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const started = clock.now();
    const platform = new OutagePlatform(h, clock, { healAt: started, heal: () => undefined }, false);
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    shards.failNext({ method: "claimRuns", effect: "lost-response" });

    await platform.run();

    const [message] = [...platform.history.values()];
    // Failed on the lost answer (2 s), then found its attempt running and came back after the lease (30 s timeout + 30 s grace).
    expect(message?.delays[0]).toBe(2);
    expect(message?.delays[1]).toBeGreaterThanOrEqual(59);
    expect(message?.delays[1]).toBeLessThanOrEqual(62);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
    expect(clock.now() - started).toBeLessThan(2 * 60_000);
  });

  it("a waiting run whose message was lost is re-sent by its shard's upkeep once it is a minute overdue, not five, and only once per minute", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await shardSendsThrough(h, run.id);
    expect(LOST_MESSAGE_MS).toBe(60_000);
    // The shard asked to be woken when the run's message would be a minute overdue.
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual((await mustStoredRun(run.id)).available_at + LOST_MESSAGE_MS);

    await makeDue(run.id, 30_000);
    expect(await runOwnerAlarm(run.id)).toBe(true);
    expect(h.sentFor(run.id)).toHaveLength(1);

    await makeDue(run.id, 90_000);
    expect(await runOwnerAlarm(run.id)).toBe(true);
    await runOwnerAlarm(run.id);
    expect(h.sentFor(run.id)).toHaveLength(2);
    await h.redeliver(h.lastSent(run.id));
    await h.redeliver(h.sentFor(run.id)[0] ?? h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("after its shard was down (its upkeep ran late), the shard's upkeep leaves expired leases alone for OUTCOME_GRACE_MS from when it resumes, long enough for an outcome on its way to be recorded, then takes them back", async () => {
    const clock = simulatedClock();
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await shardSendsThrough(h, run.id);
    // A consumer claimed the run (a minute's lease) and vanished with its message; then the
    // shard was down for fifteen minutes, its alarm with it.
    await changeOwnedRun(run.id, { status: "running", attempt: 1, startedAt: clock.now(), leaseExpiresAt: clock.now() + 60_000 });
    clock.advance(15 * 60_000);

    // The shard is back, and its alarm fires every minute it asks for.
    const resumed = clock.now();
    while (clock.now() < resumed + OUTCOME_GRACE_MS) {
      await runOwnerAlarm(run.id);
      expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
      clock.advance(60_000);
    }
    await runOwnerAlarm(run.id);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("while D1 is down, a shard's upkeep still re-sends a lost message: only its statistics flush waits, and counts the run once after D1 answers", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const before = await taskStats();
    const done = await h.enqueue({ target: { type: "http", url: receiverUrl().url }, retry: MANUAL_RETRY });
    await h.redeliver(h.lastSent(done.id));
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await shardSendsThrough(h, run.id, { DB: d1.db });
    await shardSendsThrough(h, done.id, { DB: d1.db });
    d1.down();

    // The hour closes, so the shards' flushes are due; and the run's message is long lost.
    clock.advance((Math.floor(clock.now() / 3_600_000) + 1) * 3_600_000 + 60_000 - clock.now());
    expect(await runOwnerAlarm(run.id)).toBe(true);
    await runOwnerAlarm(done.id);
    expect(d1.broken.length).toBeGreaterThan(0);
    expect(h.sentFor(run.id)).toHaveLength(2);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });

    d1.heal();
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 2 });
    expect(await received(prefix)).toHaveLength(1);
  });
});
