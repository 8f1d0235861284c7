import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { LEASE_GRACE_MS } from "../../src/runs/run-timeout";
import { type BoundStatement, faultyShardHarness, type ShardCall, type ShardFaultEffect } from "../helpers/faults";
import { simulatedClock } from "../helpers/outage";
import { flushStats, leaseExpiredAgo, ownerAlarmOf, runOwnerAlarm, shardOf, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import {
  expireLease,
  type Harness,
  MANUAL_RETRY,
  makeDue,
  mustStoredRun,
  NO_CHANGE,
  type SentMessage,
  statsDelta,
  type TaskStats,
  taskStats,
} from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. A task's run is claimed and its result
// recorded by the task shard that keeps it; the shard fails transiently
// ("Durable Object reset because its code was updated"), either before it did
// the call (the request was lost) or after (the answer was lost). D1 is off a
// run's path but for the shard's statistics flush, which fails the same ways.
// The platform then does what it always does: the queue redelivers a message
// the consumer asked to retry, and the shard's upkeep (its alarm) re-sends a
// waiting run's lost message, and takes back an attempt whose lease expired
// more than OUTCOME_GRACE_MS ago.

/** A shard call that names this run id (in its arguments). */
const names =
  (runId: string) =>
  ({ args }: ShardCall): boolean =>
    JSON.stringify(args).includes(runId);

/** How the run was recovered: whether a lease had to expire, and whether the shard's upkeep had to step in. */
interface Recovery {
  leaseExpired: boolean;
  upkeep: boolean;
}

/**
 * After a faulty delivery of `message`: the queue delivers every message the Worker sent since,
 * and redelivers each message the consumer asked to retry (`retried`: the faulty one). A message
 * asked back for after a run's lease comes back once the lease has expired. With nothing on its
 * way, the shard's upkeep runs once its time has come: it re-sends a waiting run's message a
 * minute after it was due, and takes back a running attempt whose lease expired more than
 * OUTCOME_GRACE_MS ago. While a lease is live, no delivery may call the target again.
 */
async function recoverAsThePlatformWould(h: Harness, message: SentMessage, retried: boolean, prefix: string): Promise<Recovery> {
  const runId = message.body.run_id;
  await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(runId)]);
  const callsBefore = (await received(prefix)).length;
  // What the Worker sent before the faulty delivery has been delivered; what it sent since is on its way.
  const delivered = new Set<SentMessage>(h.sent.slice(0, h.sent.indexOf(message) + 1));
  const queue: { message: SentMessage; afterLease: boolean }[] = retried ? [{ message, afterLease: false }] : [];
  const recovery: Recovery = { leaseExpired: false, upkeep: false };
  const expire = async (agoMs: number) => {
    expect(await received(prefix)).toHaveLength(callsBefore);
    if (agoMs === 0) await expireLease(runId);
    else await leaseExpiredAgo(runId, agoMs);
    recovery.leaseExpired = true;
  };
  for (let step = 0; step < 10; step++) {
    for (const sent of h.sent.filter((m) => !delivered.has(m))) {
      delivered.add(sent);
      queue.push({ message: sent, afterLease: false });
    }
    const next = queue.shift();
    if (next) {
      if (next.afterLease) await expire(0);
      await makeDue(runId);
      const result = await h.redeliver(next.message);
      for (const again of result.retryMessages) {
        queue.push({ message: next.message, afterLease: (again.delaySeconds ?? 0) > LEASE_GRACE_MS / 1000 });
      }
    } else {
      const run = await mustStoredRun(runId);
      if (["succeeded", "failed", "dead", "cancelled"].includes(run.status)) break;
      if (run.status === "running") await expire(OUTCOME_GRACE_MS + 1);
      else await makeDue(runId, LOST_MESSAGE_MS + 1);
      expect(await runOwnerAlarm(runId)).toBe(true);
      recovery.upkeep = true;
    }
  }
  return recovery;
}

interface StepFault {
  step: string;
  method: "claimRuns" | "finishRuns";
  effect: ShardFaultEffect;
  /** Whether the consumer asked the queue to bring the message back (else it acked it). */
  retried: boolean;
  /** The attempt that finally succeeds. */
  finalAttempt: number;
  /** Whether only the lease's expiry could recover the run. */
  leaseExpires: boolean;
}

// A target that answers 200 at once: the fault hits one step of its only attempt.
const successSteps: StepFault[] = [
  { step: "the claim (claimRuns)", method: "claimRuns", effect: "lost-request", retried: true, finalAttempt: 1, leaseExpires: false },
  // The claim took the lease but nobody called the target: the redelivery comes back when
  // the lease expires and takes the attempt back itself, which spends attempt 1.
  { step: "the claim (claimRuns)", method: "claimRuns", effect: "lost-response", retried: true, finalAttempt: 2, leaseExpires: true },
  // The target answered but its result was not recorded (or its answer was lost): the result
  // travels in a message of its own until the shard takes it, so the target is not called again.
  { step: "the result (finishRuns)", method: "finishRuns", effect: "lost-request", retried: false, finalAttempt: 1, leaseExpires: false },
  { step: "the result (finishRuns)", method: "finishRuns", effect: "lost-response", retried: false, finalAttempt: 1, leaseExpires: false },
];

describe("faults: a task shard fault at one step of a run's only attempt", () => {
  it.each(successSteps)(
    "$effect at $step: the run still succeeds, is counted once, and the target is called once; only a lost claim waits for its lease, and the queue recovers it without the shard's upkeep (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ method, effect, retried, finalAttempt, leaseExpires }) => {
      const { shards, h } = faultyShardHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      shards.failNext({ method, effect, match: names(run.id) });

      const faulty = await h.redeliver(message);
      expect(shards.broken).toHaveLength(1);
      expect(faulty.retryMessages).toHaveLength(retried ? 1 : 0);

      expect(await recoverAsThePlatformWould(h, message, retried, prefix)).toEqual({ leaseExpired: leaseExpires, upkeep: false });

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: finalAttempt });
      expect(await received(prefix)).toHaveLength(1);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );

  it("a delivery of a run that succeeds calls its shard twice (the claim, the result) and D1 never", async () => {
    const { shards, d1, h } = faultyShardHarness();
    const run = await h.enqueue({ target: { type: "http", url: receiverUrl().url }, retry: MANUAL_RETRY });
    const callsBefore = shards.calls.length;

    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(shards.calls.slice(callsBefore).map((c) => c.method)).toEqual(["claimRuns", "finishRuns"]);
    expect(d1.calls).toEqual([]);
  });

  // The delivery's shard calls, in order: the claim, then the result.
  it.each([1, 2].flatMap((nth) => (["lost-request", "lost-response"] as const).map((effect) => ({ nth, effect }))))(
    "$effect at shard call $nth of the delivery: the run ends succeeded, counted once, and the target is called once (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ nth, effect }) => {
      const { shards, h } = faultyShardHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      shards.failNext({ nth, effect });

      const faulty = await h.redeliver(message);
      expect(shards.broken).toHaveLength(1);
      await recoverAsThePlatformWould(h, message, faulty.retryMessages.length > 0, prefix);

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded" });
      expect(await received(prefix)).toHaveLength(1);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );
});

describe("faults: a task shard fault recording a retry", () => {
  it("the retry's finishRuns is lost: the outcome travels in a message of its own, the run is recorded retrying without waiting for its lease, and attempt 2 runs once (no run executes twice unless a retry was due)", async () => {
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();
    shards.failNext({ method: "finishRuns", match: names(run.id) });

    const faulty = await h.redeliver(message);
    expect(faulty.retryMessages).toEqual([]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    const outcome = h.lastSent(run.id);
    expect(outcome.body).toMatchObject({ run_id: run.id, attempt: 1, outcome: { status: "retrying" } });

    await h.redeliver(outcome);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1, lease_expires_at: null });
    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("the retry was recorded but the shard's answer was lost: the outcome's message finds it recorded and sends the next attempt, which runs once (every accepted task reaches a final state)", async () => {
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    shards.failNext({ method: "finishRuns", effect: "lost-response", match: names(run.id) });

    const faulty = await h.redeliver(message);
    expect(faulty.retryMessages).toEqual([]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    const outcome = h.lastSent(run.id);
    expect(outcome.body.outcome).toMatchObject({ status: "retrying" });

    await h.redeliver(outcome);
    await h.redeliver(outcome);
    const next = h.lastSent(run.id);
    expect(next.body).toEqual({ run_id: run.id, attempt: 2, due_at: (await mustStoredRun(run.id)).available_at });
    await makeDue(run.id);
    await h.redeliver(next);
    await h.redeliver(next);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });
});

// The statistics used to ride in the same D1 batch as a run's final UPDATE. Now each shard adds
// its ended runs to D1's rollups in batches (a mark of how far it has counted, and the hourly
// additions, in one D1 batch); a flush that fails is retried later and counts each run once.
describe("faults: a D1 error at a task shard's statistics flush", () => {
  /** The flush's D1 batch (recognised by its mark). */
  const flushBatch = (s: BoundStatement) => s.sql.startsWith("INSERT INTO stats_flushes");

  /** The tasks' rollups as D1 holds them now (no flush first). */
  async function recordedTaskStats(): Promise<TaskStats> {
    const row = await env.DB.prepare(
      `SELECT coalesce(sum(succeeded), 0) AS succeeded, coalesce(sum(failed), 0) AS failed,
              coalesce(sum(dead), 0) AS dead, coalesce(sum(cancelled), 0) AS cancelled
       FROM job_stats WHERE job_id = ''`,
    ).first<TaskStats>();
    return row ?? NO_CHANGE;
  }

  it.each(["lost-request", "lost-response"] as const)(
    "%s at the flush: the run's result is recorded regardless, and the next flush counts it exactly once",
    async (effect) => {
      const { d1, h } = faultyShardHarness();
      const { url } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      await useBindingsInTaskShards({ DB: d1.db }, [shardOf(run.id)]);
      const before = await taskStats();
      await h.redeliver(h.lastSent(run.id));
      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
      d1.failNext({ match: flushBatch, effect });

      await expect(flushStats()).rejects.toThrow(/Network connection lost/);
      expect(d1.broken).toHaveLength(1);
      expect(statsDelta(before, await recordedTaskStats())).toEqual(effect === "lost-request" ? NO_CHANGE : { ...NO_CHANGE, succeeded: 1 });

      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );

  it("a flush that failed is retried by the shard's own upkeep within a minute, and counts the run once; D1 saw no write for the run itself", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyShardHarness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await useBindingsInTaskShards({ DB: d1.db, TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(run.id)]);
    const before = await taskStats();
    const callsBefore = d1.calls.length;
    await h.redeliver(h.lastSent(run.id));
    expect(d1.calls.slice(callsBefore)).toEqual([]);
    d1.failNext({ match: flushBatch });
    await expect(flushStats()).rejects.toThrow(/Network connection lost/);

    // The shard wakes to try again a minute later, not at the hour's end, and flushes.
    const failedAt = clock.now();
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual(failedAt + 60_000);
    clock.advance(60_000);
    expect(await runOwnerAlarm(run.id)).toBe(true);

    expect(statsDelta(before, await recordedTaskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });
});
