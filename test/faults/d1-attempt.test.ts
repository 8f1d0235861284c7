import { describe, expect, it } from "vitest";
import { LEASE_GRACE_MS } from "../../src/runs/run-timeout";
import { type BoundStatement, binding, claimRun, type FaultEffect, faultyHarness, recordRetry, rollupStats } from "../helpers/faults";
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
  taskStats,
} from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. D1 fails transiently ("Network connection
// lost"), either before it applied a statement (the request was lost) or after
// (the answer was lost). The platform then does what it always does: the queue
// redelivers a message the consumer asked to retry, and the heartbeat reclaims
// a run whose lease expired.

/**
 * After a faulty delivery of `message`: the queue delivers every message the
 * Worker sent since, and redelivers each message the consumer asked to retry
 * (`retried`: the faulty one). A message asked back for after a run's lease
 * comes back once the lease has expired; a run left `running` with nothing on
 * its way is reclaimed by the heartbeat once its lease expired. While a lease
 * is live, no delivery may call the target again.
 */
async function recoverAsThePlatformWould(
  h: Harness,
  message: SentMessage,
  retried: boolean,
  prefix: string,
): Promise<{ leaseExpired: boolean }> {
  const runId = message.body.run_id;
  const callsBefore = (await received(prefix)).length;
  // What the Worker sent before the faulty delivery has been delivered; what it sent since is on its way.
  const delivered = new Set<SentMessage>(h.sent.slice(0, h.sent.indexOf(message) + 1));
  const queue: { message: SentMessage; afterLease: boolean }[] = retried ? [{ message, afterLease: false }] : [];
  let leaseExpired = false;
  const expire = async () => {
    expect(await received(prefix)).toHaveLength(callsBefore);
    await expireLease(runId);
    leaseExpired = true;
  };
  for (let step = 0; step < 10; step++) {
    for (const sent of h.sent.filter((m) => !delivered.has(m))) {
      delivered.add(sent);
      queue.push({ message: sent, afterLease: false });
    }
    const next = queue.shift();
    if (next) {
      if (next.afterLease) await expire();
      await makeDue(runId);
      const result = await h.redeliver(next.message);
      for (const again of result.retryMessages) {
        queue.push({ message: next.message, afterLease: (again.delaySeconds ?? 0) > LEASE_GRACE_MS / 1000 });
      }
    } else {
      const run = await mustStoredRun(runId);
      if (["succeeded", "failed", "dead", "cancelled"].includes(run.status)) break;
      if (run.status === "running") await expire();
      await h.tick();
    }
  }
  return { leaseExpired };
}

interface StepFault {
  step: string;
  match: (s: BoundStatement) => boolean;
  effect: FaultEffect;
  /** Whether the consumer asked the queue to bring the message back (else it acked it). */
  retried: boolean;
  /** Requests the target gets in all. */
  targetCalls: number;
  /** The attempt that finally succeeds. */
  finalAttempt: number;
  /** Whether only the lease's expiry could recover the run. */
  leaseExpires: boolean;
}

// A target that answers 200 at once: the fault hits one step of its only attempt.
const successSteps: StepFault[] = [
  {
    step: "the claim UPDATE to running",
    match: claimRun,
    effect: "lost-request",
    retried: true,
    targetCalls: 1,
    finalAttempt: 1,
    leaseExpires: false,
  },
  // The claim took the lease but nobody called the target: the redelivery comes back when
  // the lease expires and reclaims it, which spends attempt 1.
  {
    step: "the claim UPDATE to running",
    match: claimRun,
    effect: "lost-response",
    retried: true,
    targetCalls: 1,
    finalAttempt: 2,
    leaseExpires: true,
  },
  // The target answered but its result was not written: the result travels in a message of
  // its own until D1 takes it, so the target is not called again.
  {
    step: "the final UPDATE and stats batch",
    match: rollupStats,
    effect: "lost-request",
    retried: false,
    targetCalls: 1,
    finalAttempt: 1,
    leaseExpires: false,
  },
  {
    step: "the final UPDATE and stats batch",
    match: rollupStats,
    effect: "lost-response",
    retried: false,
    targetCalls: 1,
    finalAttempt: 1,
    leaseExpires: false,
  },
];

describe("faults: a D1 error at one step of a run's only attempt", () => {
  it.each(successSteps)(
    "$effect at $step: the run still succeeds, is counted once, and the target is called once; only a lost claim waits for its lease (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ match, effect, retried, targetCalls, finalAttempt, leaseExpires }) => {
      const { d1, h } = faultyHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      d1.failNext({ match: binding(run.id, match), effect });

      const faulty = await h.redeliver(message);
      expect(d1.broken).toHaveLength(1);
      expect(faulty.retryMessages).toHaveLength(retried ? 1 : 0);

      expect(await recoverAsThePlatformWould(h, message, retried, prefix)).toEqual({ leaseExpired: leaseExpires });

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: finalAttempt });
      expect(await received(prefix)).toHaveLength(targetCalls);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );

  // A due attempt costs two D1 calls: the claim, then the final UPDATE with its rollup.
  it.each([1, 2].flatMap((nth) => (["lost-request", "lost-response"] as const).map((effect) => ({ nth, effect }))))(
    "$effect at D1 call $nth of the delivery: the run ends succeeded, counted once, and the target is called once (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ nth, effect }) => {
      const { d1, h } = faultyHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      d1.failNext({ nth, effect });

      const faulty = await h.redeliver(message);
      expect(d1.broken).toHaveLength(1);
      await recoverAsThePlatformWould(h, message, faulty.retryMessages.length > 0, prefix);

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded" });
      expect(await received(prefix)).toHaveLength(1);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );
});

describe("faults: a D1 error recording a retry", () => {
  it("the retry UPDATE is lost: the outcome travels in a message of its own, the run is recorded retrying without waiting for its lease, and attempt 2 runs once (no run executes twice unless a retry was due)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();
    d1.failNext({ match: binding(run.id, recordRetry) });

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

  it("the retry was recorded but D1's answer was lost: the outcome's message finds it recorded and sends the next attempt, which runs once (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    d1.failNext({ match: binding(run.id, recordRetry), effect: "lost-response" });

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
