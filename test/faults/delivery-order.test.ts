import { describe, expect, it } from "vitest";
import { LEASE_GRACE_MS } from "../../src/runs/run-timeout";
import { deliverBatch, faultyTaskShards } from "../helpers/faults";
import { keyInShard } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import {
  type Harness,
  harness,
  MANUAL_RETRY,
  makeDue,
  mustStoredRun,
  NO_CHANGE,
  type RunMessage,
  statsDelta,
  TASK_QUEUE,
  taskStats,
} from "../helpers/runs";

// Invariant: no run executes twice unless a retry was due — exactly the
// attempts that were due run, once each, whatever order and however often
// the queue (at-least-once, unordered) delivers their messages. Each claim is
// decided by the run's task shard, on its own, even when a batch's claims to
// one shard travel in one call.

const attempt = (runId: string, n: number): RunMessage => ({ run_id: runId, attempt: n });

/** Delivers the bodies as one batch, each with its own message id. */
async function batch(h: Harness, bodies: RunMessage[]) {
  const { result, thrown } = await deliverBatch(
    h.env,
    TASK_QUEUE,
    bodies.map((body) => ({ id: crypto.randomUUID(), body })),
  );
  expect(thrown).toBeUndefined();
  // Every message is acked, but a copy that found its own attempt running: it comes back
  // just after that attempt's lease (timeout + grace) has expired, and finds it ended.
  for (const retried of result.retryMessages) expect(retried.delaySeconds).toBeGreaterThan(LEASE_GRACE_MS / 1000);
  return result;
}

/** A task whose first attempt has failed with 503 and whose retry (attempt 2) is now due. */
async function taskWithDueRetry(h: Harness, query = "status=503&fail_times=1") {
  const { url, prefix } = receiverUrl(query);
  const run = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 3 } });
  await batch(h, [attempt(run.id, 1)]);
  expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
  await makeDue(run.id);
  return { run, prefix };
}

describe("faults: duplicate and out-of-order queue deliveries", () => {
  it("attempt 2 delivered before a late copy of attempt 1, in separate batches: attempt 2 runs once and attempt 1 does not run again", async () => {
    const h = harness();
    const { run, prefix } = await taskWithDueRetry(h);
    const before = await taskStats();

    await batch(h, [attempt(run.id, 2)]);
    await batch(h, [attempt(run.id, 1)]);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("attempts 2 and 1 in reverse order in one batch: attempt 2 runs once", async () => {
    const h = harness();
    const { run, prefix } = await taskWithDueRetry(h);
    const before = await taskStats();

    await batch(h, [attempt(run.id, 2), attempt(run.id, 1)]);
    // Whatever the late attempt-1 copy re-sent arrives too.
    for (const message of h.sentFor(run.id).slice(2)) await h.redeliver(message);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("attempts duplicated within and across batches, in any order: each due attempt runs once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const before = await taskStats();

    await batch(h, [attempt(run.id, 1), attempt(run.id, 1)]);
    await makeDue(run.id);
    await batch(h, [attempt(run.id, 2), attempt(run.id, 1), attempt(run.id, 2)]);
    await batch(h, [attempt(run.id, 1), attempt(run.id, 2), attempt(run.id, 3)]);
    for (const message of h.sentFor(run.id)) await h.redeliver(message);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a message for attempt 2 that arrives before attempt 1 ran does nothing; attempt 1 then runs once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });

    await batch(h, [attempt(run.id, 2), attempt(run.id, 1), attempt(run.id, 2)]);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a retry's message delivered before its backoff is due is re-sent, not run early; it runs once when due", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await batch(h, [attempt(run.id, 1)]);
    const sentBefore = h.sentFor(run.id).length;

    await batch(h, [attempt(run.id, 2), attempt(run.id, 2)]);

    const retrying = await mustStoredRun(run.id);
    expect(retrying).toMatchObject({ status: "retrying", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    const resent = h.sentFor(run.id).slice(sentBefore);
    const again = { ...attempt(run.id, 2), due_at: retrying.available_at };
    expect(resent.map((m) => m.body)).toEqual([again, again]);
    expect(resent.every((m) => (m.delaySeconds ?? 0) > 0)).toBe(true);

    await makeDue(run.id);
    await batch(
      h,
      resent.map((m) => m.body),
    );
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });

  it("duplicated messages of runs kept by different shards, in one batch: one claim call per shard, and each due attempt runs once", async () => {
    const shards = faultyTaskShards();
    const h = harness({ TASK_SHARD: shards.namespace });
    const targets = [receiverUrl(), receiverUrl(), receiverUrl()];
    const runs = [];
    for (const [i, t] of targets.entries()) {
      runs.push(await h.enqueue({ target: { type: "http", url: t.url }, retry: MANUAL_RETRY }, { "idempotency-key": keyInShard(i % 2) }));
    }
    const before = await taskStats();
    const callsBefore = shards.calls.length;

    const result = await batch(h, runs.flatMap((r) => [attempt(r.id, 1), attempt(r.id, 1)]).reverse());

    const claims = shards.calls.slice(callsBefore).filter((c) => c.method === "claimRuns");
    expect(claims.map((c) => c.shard).sort()).toEqual([0, 1]);
    // The copies that found their attempt running come back after its lease, and find it ended.
    expect(result.retryMessages).toHaveLength(3);
    for (const r of runs) await h.redeliver(h.sentFor(r.id)[0] ?? h.lastSent(r.id));
    for (const r of runs) expect(await mustStoredRun(r.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    for (const t of targets) expect(await received(t.prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 3 });
  });

  it("a run that fails every attempt, with every message delivered twice and the last ones reversed, runs each attempt once and is counted dead once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const before = await taskStats();

    await batch(h, [attempt(run.id, 1), attempt(run.id, 1)]);
    await makeDue(run.id);
    await batch(h, [attempt(run.id, 2), attempt(run.id, 2)]);
    await makeDue(run.id);
    await batch(h, [attempt(run.id, 3), attempt(run.id, 2), attempt(run.id, 1), attempt(run.id, 3)]);
    for (const message of [...h.sentFor(run.id)].reverse()) await h.redeliver(message);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "dead", attempt: 3 });
    expect(await received(prefix)).toHaveLength(3);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });
});
