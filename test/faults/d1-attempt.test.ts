import { describe, expect, it } from "vitest";
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
 * After a faulty delivery of `message`: the queue redelivers it; a run left
 * `running` by the fault is reclaimed by the heartbeat once its lease
 * expired, and every attempt it then sends is delivered when due. While a
 * lease is live, no redelivery may call the target again.
 */
async function recoverAsThePlatformWould(h: Harness, message: SentMessage, prefix: string): Promise<{ leaseExpired: boolean }> {
  const callsBefore = (await received(prefix)).length;
  await h.redeliver(message);
  let leaseExpired = false;
  for (let step = 0; step < 5; step++) {
    const run = await mustStoredRun(message.body.run_id);
    if (["succeeded", "failed", "dead", "cancelled"].includes(run.status)) break;
    if (run.status === "running") {
      expect(await received(prefix)).toHaveLength(callsBefore);
      await expireLease(run.id);
      leaseExpired = true;
      await h.tick();
    } else {
      await makeDue(run.id);
      await h.redeliver(h.lastSent(run.id));
    }
  }
  return { leaseExpired };
}

interface StepFault {
  step: string;
  match: (s: BoundStatement) => boolean;
  effect: FaultEffect;
  /** Requests the target gets in all. */
  targetCalls: number;
  /** The attempt that finally succeeds. */
  finalAttempt: number;
  /** Whether only the lease's expiry could recover the run. */
  leaseExpires: boolean;
}

// A target that answers 200 at once: the fault hits one step of its only attempt.
const successSteps: StepFault[] = [
  { step: "the claim UPDATE to running", match: claimRun, effect: "lost-request", targetCalls: 1, finalAttempt: 1, leaseExpires: false },
  // The claim took the lease but nobody called the target: attempt 1 is spent once the lease expires.
  { step: "the claim UPDATE to running", match: claimRun, effect: "lost-response", targetCalls: 1, finalAttempt: 2, leaseExpires: true },
  // The target answered but its result was never written: one more execution, after the lease expired.
  {
    step: "the final UPDATE and stats batch",
    match: rollupStats,
    effect: "lost-request",
    targetCalls: 2,
    finalAttempt: 2,
    leaseExpires: true,
  },
  {
    step: "the final UPDATE and stats batch",
    match: rollupStats,
    effect: "lost-response",
    targetCalls: 1,
    finalAttempt: 1,
    leaseExpires: false,
  },
];

describe("faults: a D1 error at one step of a run's only attempt", () => {
  it.each(successSteps)(
    "$effect at $step: the run still succeeds, is counted once, and the target runs again only after the lease expired (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ match, effect, targetCalls, finalAttempt, leaseExpires }) => {
      const { d1, h } = faultyHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      d1.failNext({ match: binding(run.id, match), effect });

      const faulty = await h.redeliver(message);
      expect(d1.broken).toHaveLength(1);
      expect(faulty.retryMessages).toHaveLength(1);

      expect(await recoverAsThePlatformWould(h, message, prefix)).toEqual({ leaseExpired: leaseExpires });

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: finalAttempt });
      expect(await received(prefix)).toHaveLength(targetCalls);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );

  // A due attempt costs two D1 calls: the claim, then the final UPDATE with its rollup.
  it.each([1, 2].flatMap((nth) => (["lost-request", "lost-response"] as const).map((effect) => ({ nth, effect }))))(
    "$effect at D1 call $nth of the delivery: the run ends succeeded, counted once, with at most one extra execution (every accepted task reaches a final state; no run executes twice unless a retry was due)",
    async ({ nth, effect }) => {
      const { d1, h } = faultyHarness();
      const { url, prefix } = receiverUrl();
      const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
      const message = h.lastSent(run.id);
      const before = await taskStats();
      d1.failNext({ nth, effect });

      await h.redeliver(message);
      expect(d1.broken).toHaveLength(1);
      await recoverAsThePlatformWould(h, message, prefix);

      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded" });
      expect((await received(prefix)).length).toBeGreaterThanOrEqual(1);
      expect((await received(prefix)).length).toBeLessThanOrEqual(2);
      expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    },
  );
});

describe("faults: a D1 error recording a retry", () => {
  it("the retry UPDATE is lost: the run stays running until its lease expires, then the heartbeat retries it once (no run executes twice unless a retry was due)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();
    d1.failNext({ match: binding(run.id, recordRetry) });

    await h.redeliver(message);
    await h.redeliver(message);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);

    await expireLease(run.id);
    await h.tick();
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("the retry was recorded but D1's answer was lost: the redelivered message sends the next attempt, which runs once (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    d1.failNext({ match: binding(run.id, recordRetry), effect: "lost-response" });

    const faulty = await h.redeliver(message);
    expect(faulty.retryMessages).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);

    await h.redeliver(message);
    const next = h.lastSent(run.id);
    expect(next.body).toEqual({ run_id: run.id, attempt: 2, due_at: (await mustStoredRun(run.id)).available_at });
    await makeDue(run.id);
    await h.redeliver(next);
    await h.redeliver(next);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });
});
