import { afterEach, describe, expect, it, vi } from "vitest";
import { LEASE_GRACE_MS } from "../../src/runs/run-timeout";
import { received, receiverUrl } from "../helpers/receiver";
import {
  expireLease,
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

// Invariants: every accepted task reaches a final state, and no attempt
// executes twice unless a retry was due. The harness records what the Worker
// sends to its queues, so each test decides when and how often a message arrives.

describe("queue: duplicate and redelivered messages", () => {
  it("a duplicate delivery of the same message in one batch executes the target once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();

    const result = await h.deliver(message.queue, [message.body, message.body], ["msg-1", "msg-1"]);

    // The copy that found the attempt running is asked back for just after its lease, not run.
    for (const retried of result.retryMessages) expect(retried.delaySeconds).toBeGreaterThan(LEASE_GRACE_MS / 1000);
    expect(await received(prefix)).toHaveLength(1);
    const done = await mustStoredRun(run.id);
    expect(done).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a duplicate delivery of the same message in a later batch executes the target once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();

    await h.redeliver(message);
    const second = await h.redeliver(message);

    expect(second.explicitAcks).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);
  });

  it("the same message delivered to two consumers at once executes the target once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=100");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const before = await taskStats();

    await Promise.all([h.redeliver(message), h.redeliver(message), h.redeliver(message)]);

    expect(await received(prefix)).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a redelivered message for a run that is running with a live lease does not run it: it comes back just after the lease expires, and then does nothing to a run that finished", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=500");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const message = h.lastSent(run.id);
    const inFlight = h.redeliver(message);
    const running = await runReaches(run.id, ["running"]);

    const duplicate = await h.redeliver(message);

    const untilLease = ((running.lease_expires_at ?? 0) - Date.now()) / 1000;
    expect(duplicate.retryMessages).toHaveLength(1);
    expect(duplicate.retryMessages[0]?.delaySeconds).toBeGreaterThanOrEqual(Math.floor(untilLease));
    expect(duplicate.retryMessages[0]?.delaySeconds).toBeLessThanOrEqual(Math.ceil(untilLease) + 2);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    await inFlight;
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect((await h.redeliver(message)).explicitAcks).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
    expect(h.sentFor(run.id)).toHaveLength(1);
  });

  it("a redelivery after the lease expired reclaims the run: the lost attempt's result is ignored and the target runs once more", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=500");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const first = h.lastSent(run.id);
    const before = await taskStats();
    // The consumer running attempt 1 is presumed lost once its lease runs out.
    const lost = h.redeliver(first);
    await runReaches(run.id, ["running"]);
    await expireLease(run.id);

    await h.redeliver(first);

    const reclaimed = await mustStoredRun(run.id);
    expect(reclaimed).toMatchObject({ status: "retrying", attempt: 1 });
    expect(JSON.stringify(reclaimed.error)).toContain("lease expired");
    const next = h.lastSent(run.id);
    expect(next.body).toEqual({ run_id: run.id, attempt: 2 });

    await lost;
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });

    await h.redeliver(next);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a run whose lease expired on its last attempt is reclaimed as dead and counted once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=500");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    const first = h.lastSent(run.id);
    const before = await taskStats();
    const lost = h.redeliver(first);
    await runReaches(run.id, ["running"]);
    await expireLease(run.id);

    await h.redeliver(first);
    await h.redeliver(first);
    await lost;

    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 1 });
    expect(JSON.stringify(dead.error)).toContain("lease expired");
    expect(await received(prefix)).toHaveLength(1);
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });
});

describe("queue: stale and unknown messages", () => {
  it("a redelivered message for an attempt that already ended does not run it again, even when the next attempt is due", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const first = h.lastSent(run.id);
    await h.redeliver(first);
    await makeDue(run.id);
    const waiting = await mustStoredRun(run.id);

    const result = await h.redeliver(first);

    expect(result.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toEqual(waiting);
    expect(await received(prefix)).toHaveLength(1);
    // At most the pending attempt's message is sent again; attempt 1 never is.
    expect(
      h
        .sentFor(run.id)
        .slice(1)
        .map((m) => m.body.attempt),
    ).not.toContain(1);
  });

  it("a message for an attempt older than the last one is acked and sends nothing", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 5 } });
    const first = h.lastSent(run.id);
    await h.redeliver(first);
    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));
    await makeDue(run.id);
    const waiting = await mustStoredRun(run.id);
    expect(waiting).toMatchObject({ status: "retrying", attempt: 2 });
    const sentBefore = h.sentFor(run.id).length;

    const result = await h.redeliver(first);

    expect(result.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toEqual(waiting);
    expect(await received(prefix)).toHaveLength(2);
    expect(h.sentFor(run.id)).toHaveLength(sentBefore);
  });

  it("a message naming an attempt beyond the next one does nothing", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });

    await h.deliver(TASK_QUEUE, [{ run_id: run.id, attempt: 3 }]);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "queued", attempt: 0 });
    expect(await received(prefix)).toHaveLength(0);
  });

  it("a message for a finished run is acked and does nothing", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=404");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await h.redeliver(h.lastSent(run.id));
    const failed = await mustStoredRun(run.id);

    const result = await h.deliver(TASK_QUEUE, [{ run_id: run.id, attempt: 2 }]);

    expect(result.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toEqual(failed);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a message for an unknown run or with an invalid body is acked, not retried", async () => {
    const h = harness();
    const result = await h.deliver(TASK_QUEUE, [
      { run_id: "run_does_not_exist", attempt: 1 },
      { run_id: "", attempt: 0 },
    ]);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(2);
  });
});

describe("queue: what a batch logs at the default LOG_LEVEL", () => {
  afterEach(() => vi.restoreAllMocks());

  it("one queue_batch line with the counts, and a run_state line only for the attempt that failed", async () => {
    const h = harness();
    const ok = receiverUrl();
    const failing = receiverUrl("status=500");
    const runs = [
      await h.enqueue({ target: { type: "http", url: ok.url }, retry: MANUAL_RETRY }),
      await h.enqueue({ target: { type: "http", url: ok.url }, retry: MANUAL_RETRY }),
      await h.enqueue({ target: { type: "http", url: failing.url }, retry: MANUAL_RETRY }),
    ];
    const lines: Record<string, unknown>[] = [];
    for (const method of ["log", "warn", "error"] as const) {
      vi.spyOn(console, method).mockImplementation((line: unknown) => {
        if (typeof line === "string" && line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
      });
    }

    await h.deliver(
      TASK_QUEUE,
      runs.map((run) => h.lastSent(run.id).body),
    );
    vi.restoreAllMocks();

    expect(await received(ok.prefix)).toHaveLength(2);
    const failed = runs[2]?.id;
    expect(lines.filter((l) => l.event === "run_state")).toEqual([
      expect.objectContaining({ run_id: failed, from: "running", to: "retrying", attempt: 1 }),
    ]);
    expect(lines.filter((l) => l.event === "queue_batch")).toEqual([
      expect.objectContaining({ level: "info", queue: TASK_QUEUE, messages: 3, redelivered: 0, ended: { succeeded: 2, retrying: 1 } }),
    ]);
  });
});
