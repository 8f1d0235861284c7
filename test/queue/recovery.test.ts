import { describe, expect, it } from "vitest";
import { HANDBACK_DELAY_SECONDS } from "../../src/execution/dead-letters";
import { MAX_QUEUE_DELAY_SECONDS } from "../../src/execution/dispatch";
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { leaseExpiredAgo, ownerAlarmOf, runOwnerAlarm, shardOf, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import {
  DEAD_LETTER_QUEUE,
  harness,
  MANUAL_RETRY,
  makeDue,
  mustStoredRun,
  NO_CHANGE,
  runReaches,
  statsDelta,
  TASK_QUEUE,
  taskStats,
} from "../helpers/runs";

// Every accepted task reaches a final state: a lost message, a vanished
// consumer or a message that exhausted its deliveries must not strand a run,
// nor end one that never ran an attempt. The queue redelivers what a consumer
// asked back for; the task shard keeping a run looks after it with its own
// upkeep (its alarm); the dead-letter consumer hands back what the queue gave up on.

describe("queue: recovering lost messages and consumers", () => {
  it("a retry whose message could not be sent is sent when the queue redelivers the attempt's message", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 3, backoff: 1, max_delay: 1 } });
    const first = h.lastSent(run.id);
    h.failNextSends(1);

    const failed = await h.redeliver(first);
    expect(failed.retryMessages).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    await h.redeliver(first);

    const next = h.lastSent(run.id);
    expect(next.body).toEqual({ run_id: run.id, attempt: 2, due_at: (await mustStoredRun(run.id)).available_at });
    await makeDue(run.id);
    await h.redeliver(next);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });

  it("a new task whose first message could not be sent is still accepted, and its shard's upkeep sends it a minute after it was due; it runs once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    h.failNextSends(1);
    const run = await h.enqueue({ target: { type: "http", url } });
    expect(h.sentFor(run.id)).toEqual([]);
    await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(run.id)]);
    const queued = await mustStoredRun(run.id);
    expect(queued).toMatchObject({ status: "queued", attempt: 0 });
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual(queued.available_at + LOST_MESSAGE_MS);

    await makeDue(run.id, LOST_MESSAGE_MS + 1);
    expect(await runOwnerAlarm(run.id)).toBe(true);

    expect(h.sentFor(run.id).map((m) => m.body)).toEqual([{ run_id: run.id, attempt: 1 }]);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a retrying run whose message was lost is re-sent by its shard's upkeep a minute after it was due", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 3, backoff: 1, max_delay: 1 } });
    await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(run.id)]);
    await h.redeliver(h.lastSent(run.id));
    const retrying = await mustStoredRun(run.id);
    expect(retrying).toMatchObject({ status: "retrying", attempt: 1 });
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual(retrying.available_at + LOST_MESSAGE_MS);
    const lost = h.sent.length;

    await makeDue(run.id, LOST_MESSAGE_MS + 1);
    expect(await runOwnerAlarm(run.id)).toBe(true);

    const resent = h.sentFor(run.id).filter((m) => h.sent.indexOf(m) >= lost);
    expect(resent.map((m) => m.body)).toEqual([{ run_id: run.id, attempt: 2 }]);
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });

  it("a running run whose consumer vanished is taken back by its shard's upkeep once its lease expired more than OUTCOME_GRACE_MS ago, and then succeeds; the vanished consumer's late result is ignored", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=300");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(run.id)]);
    const before = await taskStats();
    const lost = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);
    await leaseExpiredAgo(run.id, OUTCOME_GRACE_MS + 1);

    expect(await runOwnerAlarm(run.id)).toBe(true);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    const next = h.lastSent(run.id);
    expect(next.body).toEqual({ run_id: run.id, attempt: 2 });
    await lost;
    await h.redeliver(next);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a message that arrived early and could not be re-sent is redelivered by the queue, not lost", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, delay: 2 * 86_400 });
    const first = h.lastSent(run.id);
    h.failNextSends(1);

    const failed = await h.redeliver(first);
    expect(failed.retryMessages).toHaveLength(1);
    await h.redeliver(first);

    expect(h.sentFor(run.id).map((m) => m.body.attempt)).toEqual([1, 1]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "scheduled", attempt: 0 });
  });
});

describe("queue: the dead-letter consumer", () => {
  it("hands a waiting run whose message was dead-lettered back to be run (never ends it), and the run later succeeds once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, failure_callback: { type: "http", url: receiverUrl().url } });
    const before = await taskStats();

    const dead = await h.deliver(DEAD_LETTER_QUEUE, [{ run_id: run.id, attempt: 1 }]);
    await h.deliver(DEAD_LETTER_QUEUE, [{ run_id: run.id, attempt: 1 }]);

    expect(dead.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "queued", attempt: 0, finished_at: null });
    const handedBack = h.sentFor(run.id).slice(1);
    expect(handedBack).toHaveLength(2);
    for (const message of handedBack) {
      expect(message.body).toMatchObject({ run_id: run.id, attempt: 1 });
      expect(message.delaySeconds).toBeGreaterThanOrEqual(HANDBACK_DELAY_SECONDS - 1);
      await h.redeliver(message);
    }
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("leaves a finished run as it is", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(run.id));
    const succeeded = await mustStoredRun(run.id);
    const before = await taskStats();

    const result = await h.deliver(DEAD_LETTER_QUEUE, [{ run_id: run.id, attempt: 1 }]);

    expect(result.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toEqual(succeeded);
    expect(statsDelta(before, await taskStats())).toEqual(NO_CHANGE);
  });

  it("ignores a dead-lettered message for an attempt that already happened, so the pending retry still runs", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await h.redeliver(h.lastSent(run.id));
    const retry = h.lastSent(run.id);
    expect(retry.body.attempt).toBe(2);

    // A duplicate copy of attempt 1's message exhausted its deliveries.
    await h.deliver(DEAD_LETTER_QUEUE, [{ run_id: run.id, attempt: 1 }]);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    await makeDue(run.id);
    await h.redeliver(retry);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });
});

describe("queue: delays longer than the queue allows", () => {
  const TWO_DAYS = 2 * 86_400;

  it("a run due in two days is sent with the queue's maximum delay", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, delay: TWO_DAYS });
    const dueAt = (await mustStoredRun(run.id)).available_at;
    expect(h.sentFor(run.id)).toEqual([
      { queue: TASK_QUEUE, body: { run_id: run.id, attempt: 1, due_at: dueAt }, delaySeconds: MAX_QUEUE_DELAY_SECONDS },
    ]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "scheduled", attempt: 0 });
  });

  it("a message that arrives before its run is due is re-sent rather than started early", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, delay: TWO_DAYS });

    const result = await h.redeliver(h.lastSent(run.id));

    expect(result.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "scheduled", attempt: 0, started_at: null });
    expect(await received(prefix)).toHaveLength(0);
    const resent = h.sentFor(run.id);
    expect(resent).toHaveLength(2);
    expect(resent[1]).toEqual({
      queue: TASK_QUEUE,
      body: { run_id: run.id, attempt: 1, due_at: (await mustStoredRun(run.id)).available_at },
      delaySeconds: MAX_QUEUE_DELAY_SECONDS,
    });
  });
});

describe("queue: delayed messages start on time", () => {
  it("a message sent ahead of its run (delays are whole seconds, rounded down) is held until due: not early, and not a second late", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const runAt = Date.now() + 1_700;
    const run = await h.enqueue({ target: { type: "http", url }, run_at: new Date(runAt).toISOString() });
    const sent = h.lastSent(run.id);
    expect(sent.body).toEqual({ run_id: run.id, attempt: 1, due_at: runAt });
    expect(sent.delaySeconds).toBe(1);

    // Delivered as soon as it is sent, earlier than any queue would: the consumer still waits.
    await h.redeliver(sent);

    const stored = await mustStoredRun(run.id);
    expect(stored).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(stored.started_at).toBeGreaterThanOrEqual(runAt);
    expect(stored.started_at).toBeLessThan(runAt + 500);
    expect(await received(prefix)).toHaveLength(1);
  });
});
