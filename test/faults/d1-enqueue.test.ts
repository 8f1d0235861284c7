import { describe, expect, it } from "vitest";
import { LOST_MESSAGE_MS, redeliveryDelaySeconds } from "../../src/execution/redelivery";
import { deliverBatch, faultyShardHarness, type ShardCall } from "../helpers/faults";
import { simulatedClock } from "../helpers/outage";
import { keyInShard, ownerAlarmOf, runOwnerAlarm, shardOf, tasksWithKey, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { DEAD_LETTER_QUEUE, expireLease, MANUAL_RETRY, mustStoredRun, NO_CHANGE, statsDelta, TASK_QUEUE, taskStats } from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. A task is created by the task shard that keeps
// it (one createRuns call per shard involved), and the queue consumer claims
// and reads runs from their shard (one call per shard per batch). A shard
// fails transiently ("Durable Object reset because its code was updated"),
// either before it did a call (the request was lost) or after (the answer was
// lost). The platform then does what it always does: the queue redelivers a
// message the consumer asked to retry, and the shard's upkeep (its alarm)
// sends a waiting run's message that nobody sent.

/** How many runs a shard call was about (its second argument lists them). */
const itemsOf = (call: ShardCall | undefined): number => (Array.isArray(call?.args[1]) ? call.args[1].length : 0);

/** A shard call that names this run id (in its arguments). */
const names =
  (runId: string) =>
  ({ args }: ShardCall): boolean =>
    JSON.stringify(args).includes(runId);

describe("faults: a task shard fault at POST /v1/tasks (its createRuns call)", () => {
  const task = (url: string) => ({ target: { type: "http", url }, retry: MANUAL_RETRY });

  it.each(["lost-request", "lost-response"] as const)(
    "%s once: the call is tried once more with the run's id fixed beforehand, so the task is accepted (202, not a replay), written once and sent once, and runs once (every accepted task reaches a final state)",
    async (effect) => {
      const { shards, h } = faultyShardHarness();
      const { url, prefix } = receiverUrl();
      const key = `fault-${crypto.randomUUID()}`;
      shards.failNext({ method: "createRuns", effect });

      const res = await h.api("/v1/tasks", { method: "POST", json: task(url), headers: { "idempotency-key": key } });

      expect(res.status).toBe(202);
      expect(res.headers.get("idempotent-replayed")).toBeNull();
      expect(shards.broken.map((c) => c.method)).toEqual(["createRuns"]);
      const run = await res.json<{ id: string }>();
      expect((await tasksWithKey(key)).map((r) => r.id)).toEqual([run.id]);
      expect(h.sentFor(run.id)).toHaveLength(1);
      await h.redeliver(h.lastSent(run.id));
      expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
      expect(await received(prefix)).toHaveLength(1);
    },
  );

  it("the shard refuses both tries: the API answers 503 with Retry-After and stores nothing; the client's retry with the same Idempotency-Key creates the one run, which runs once (every accepted task reaches a final state)", async () => {
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const key = `fault-${crypto.randomUUID()}`;
    shards.failNext({ method: "createRuns" });
    shards.failNext({ method: "createRuns" });

    const failed = await h.api("/v1/tasks", { method: "POST", json: task(url), headers: { "idempotency-key": key } });
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("5");
    expect(await failed.json()).toMatchObject({ error: { code: "unavailable" } });
    expect(await tasksWithKey(key)).toEqual([]);

    const run = await h.enqueue(task(url), { "idempotency-key": key });
    await h.redeliver(h.lastSent(run.id));

    expect((await tasksWithKey(key)).map((r) => r.id)).toEqual([run.id]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("the shard wrote the run but its answer was lost, and the second try was refused: the API answers 503, the client's retry returns that run, and the shard's upkeep sends its message within a minute of it being due (every accepted task reaches a final state)", async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const key = `fault-${crypto.randomUUID()}`;
    await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
    shards.failNext({ method: "createRuns", effect: "lost-response" });
    shards.failNext({ method: "createRuns" });

    const failed = await h.api("/v1/tasks", { method: "POST", json: task(url), headers: { "idempotency-key": key } });
    expect(failed.status).toBe(503);
    const replay = await h.api("/v1/tasks", { method: "POST", json: task(url), headers: { "idempotency-key": key } });
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const run = await replay.json<{ id: string }>();
    expect((await tasksWithKey(key)).map((r) => r.id)).toEqual([run.id]);
    // Nobody sent its message: the Worker only sends runs it created.
    expect(h.sentFor(run.id)).toEqual([]);

    const dueAt = (await mustStoredRun(run.id)).available_at;
    expect(await ownerAlarmOf(run.id)).toBeLessThanOrEqual(dueAt + LOST_MESSAGE_MS);
    clock.advance(dueAt + LOST_MESSAGE_MS - clock.now());
    expect(await runOwnerAlarm(run.id)).toBe(true);
    expect(h.sentFor(run.id)).toHaveLength(1);
    await h.redeliver(h.lastSent(run.id));
    await runOwnerAlarm(run.id);

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });
});

describe("faults: a task shard fault in a bulk enqueue (POST /v1/tasks/batch)", () => {
  it.each(["lost-request", "lost-response"] as const)(
    "%s: the tasks travel in one call to their shard, which is tried once more; every task is accepted, written once and sent once (every accepted task reaches a final state)",
    async (effect) => {
      const { shards, h } = faultyShardHarness();
      const targets = [receiverUrl(), receiverUrl(), receiverUrl()];
      shards.failNext({ method: "createRuns", effect });

      const res = await h.api("/v1/tasks/batch", {
        method: "POST",
        json: { tasks: targets.map((t) => ({ target: { type: "http", url: t.url } })) },
      });
      const body = await res.json<{ items: { status: number; run?: { id: string } }[] }>();

      expect(shards.broken).toHaveLength(1);
      expect(itemsOf(shards.broken[0])).toBe(3);
      expect(body.items.map((i) => i.status)).toEqual([202, 202, 202]);
      for (const [i, item] of body.items.entries()) {
        const id = item.run?.id ?? "";
        expect(h.sentFor(id)).toHaveLength(1);
        await h.redeliver(h.lastSent(id));
        expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded", attempt: 1 });
        expect(await received(targets[i]?.prefix ?? "")).toHaveLength(1);
      }
      const shard = shardOf(body.items[0]?.run?.id ?? "");
      const written = await Promise.all(body.items.map((item) => mustStoredRun(item.run?.id ?? "")));
      expect(written.map((r) => r.id)).toEqual(body.items.map((item) => item.run?.id));
      expect(body.items.every((item) => shardOf(item.run?.id ?? "") === shard)).toBe(true);
    },
  );

  it("a shard that stays unavailable fails only its own tasks' items, with 503 (retry them); the tasks other shards keep are accepted and sent (every accepted task reaches a final state)", async () => {
    const { shards, h } = faultyShardHarness();
    const [bad, good] = [receiverUrl(), receiverUrl()];
    shards.down({ shard: 1 });

    const res = await h.api("/v1/tasks/batch", {
      method: "POST",
      json: {
        tasks: [
          { target: { type: "http", url: bad.url }, idempotency_key: keyInShard(1) },
          { target: { type: "http", url: good.url }, idempotency_key: keyInShard(2) },
        ],
      },
    });
    const body = await res.json<{ items: { status: number; run?: { id: string }; error?: { code: string } }[] }>();

    expect(res.status).toBe(200);
    expect(body.items[0]).toMatchObject({ status: 503, error: { code: "unavailable", details: { retry_after_seconds: 5 } } });
    expect(body.items[1]?.status).toBe(202);
    const id = body.items[1]?.run?.id ?? "";
    expect(shardOf(id)).toBe(2);
    await h.redeliver(h.lastSent(id));
    expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded" });
    expect(await received(good.prefix)).toHaveLength(1);
    expect(await received(bad.prefix)).toHaveLength(0);
  });
});

describe("faults: one message of a batch fails", () => {
  /** Tasks kept by one shard, so a consumer batch claims them in one call. */
  async function tasksInOneShard(h: ReturnType<typeof faultyShardHarness>["h"], count: number) {
    const shard = 3;
    const targets = Array.from({ length: count }, () => receiverUrl());
    const runs = [];
    for (const t of targets)
      runs.push(await h.enqueue({ target: { type: "http", url: t.url }, retry: MANUAL_RETRY }, { "idempotency-key": keyInShard(shard) }));
    for (const run of runs) expect(shardOf(run.id)).toBe(shard);
    return { runs, targets };
  }

  it("a shard fault that follows one message (in the batch's shared claim, and again when it is retried alone) retries only that message; the others are acked one by one (every accepted task reaches a final state)", async () => {
    const { shards, h } = faultyShardHarness();
    const {
      runs: [runA, runB],
      targets: [a, b],
    } = await tasksInOneShard(h, 2);
    if (!runA || !runB || !a || !b) throw new Error("two runs expected");
    // The batch's claims travel in one call to the shard; A's item breaks it, and then A's own retry.
    shards.failNext({ method: "claimRuns", match: names(runA.id) });
    shards.failNext({ method: "claimRuns", match: names(runA.id) });

    const { result, thrown } = await deliverBatch(h.env, TASK_QUEUE, [
      { id: "msg-a", body: h.lastSent(runA.id).body },
      { id: "msg-b", body: h.lastSent(runB.id).body },
    ]);

    expect(thrown).toBeUndefined();
    expect(shards.broken.map(itemsOf)).toEqual([2, 1]);
    expect(result.retryBatch.retry).toBe(false);
    expect(result.explicitAcks).toEqual(["msg-b"]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["msg-a"]);
    expect(await mustStoredRun(runB.id)).toMatchObject({ status: "succeeded" });
    expect(await mustStoredRun(runA.id)).toMatchObject({ status: "queued", attempt: 0 });

    // The queue redelivers only the message it was asked to retry.
    await deliverBatch(h.env, TASK_QUEUE, [{ id: "msg-a", body: h.lastSent(runA.id).body, attempts: 2 }]);
    expect(await mustStoredRun(runA.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(a.prefix)).toHaveLength(1);
    expect(await received(b.prefix)).toHaveLength(1);
  });

  it.each(["lost-request", "lost-response"] as const)(
    "%s at the batch's shared claim: each claim is tried again on its own, and every run runs once (every accepted task reaches a final state; no run executes twice)",
    async (effect) => {
      const { shards, h } = faultyShardHarness();
      const { runs, targets } = await tasksInOneShard(h, 3);
      shards.failNext({ method: "claimRuns", effect });

      const { result } = await deliverBatch(
        h.env,
        TASK_QUEUE,
        runs.map((r, i) => ({ id: `msg-${i}`, body: h.lastSent(r.id).body })),
      );

      expect(shards.broken).toHaveLength(1);
      expect(itemsOf(shards.broken[0])).toBe(3);
      if (effect === "lost-request") {
        expect(result.retryMessages).toEqual([]);
        for (const r of runs) expect(await mustStoredRun(r.id)).toMatchObject({ status: "succeeded", attempt: 1 });
      } else {
        // The shard took the claims but nobody heard: no target was called, and each message comes
        // back once its attempt's lease has expired, takes the attempt back and sends the next one.
        expect(result.retryMessages).toHaveLength(3);
        for (const r of runs) {
          expect(await mustStoredRun(r.id)).toMatchObject({ status: "running", attempt: 1 });
          await expireLease(r.id);
          await h.redeliver(h.lastSent(r.id));
          await h.redeliver(h.lastSent(r.id));
          expect(await mustStoredRun(r.id)).toMatchObject({ status: "succeeded", attempt: 2 });
        }
      }
      for (const t of targets) expect(await received(t.prefix)).toHaveLength(1);
    },
  );

  it("a dead letter whose run's shard cannot answer comes back later on the same back-off; the others are handed back at once, and no run is ended (every accepted task reaches a final state)", async () => {
    const { shards, h } = faultyShardHarness();
    const { url } = receiverUrl();
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await h.enqueue({ target: { type: "http", url }, delay: 3600 }));
    const [first, second, third] = runs.map((r) => ({ id: `dlq-${r.id}`, body: { run_id: r.id, attempt: 1 } }));
    if (!first || !second || !third) throw new Error("three runs expected");
    const before = await taskStats();
    shards.down({ method: "getRuns", match: names(second.body.run_id) });

    const delivery = await deliverBatch(h.env, DEAD_LETTER_QUEUE, [first, second, third]);

    expect(delivery.thrown).toBeUndefined();
    expect(delivery.result.explicitAcks).toEqual([first.id, third.id]);
    expect(delivery.result.retryMessages).toEqual([{ msgId: second.id, delaySeconds: redeliveryDelaySeconds(1) }]);
    shards.heal();
    const retried = await deliverBatch(h.env, DEAD_LETTER_QUEUE, [{ ...second, attempts: 2 }]);

    expect(retried.result.explicitAcks).toEqual([second.id]);
    for (const run of runs) {
      expect(await mustStoredRun(run.id)).toMatchObject({ status: "scheduled", attempt: 0, finished_at: null });
      expect(h.sentFor(run.id).map((m) => m.body)).toEqual([
        expect.objectContaining({ attempt: 1 }),
        expect.objectContaining({ attempt: 1, due_at: (await mustStoredRun(run.id)).available_at }),
      ]);
    }
    expect(statsDelta(before, await taskStats())).toEqual(NO_CHANGE);
  });
});
