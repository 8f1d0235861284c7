import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { redeliveryDelaySeconds } from "../../src/execution/redelivery";
import { type BoundStatement, binding, claimRun, deliverBatch, faultyHarness, insertRun, loadRun } from "../helpers/faults";
import { received, receiverUrl } from "../helpers/receiver";
import { DEAD_LETTER_QUEUE, MANUAL_RETRY, makeDue, mustStoredRun, NO_CHANGE, statsDelta, TASK_QUEUE, taskStats } from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. D1 fails transiently ("Network connection
// lost"), either before it applied a statement (the request was lost) or after
// (the answer was lost). The platform then does what it always does: the queue
// redelivers a message the consumer asked to retry, and the heartbeat reclaims
// a run whose lease expired.

describe("faults: a D1 error inserting the run of POST /v1/tasks", () => {
  async function runsWithKey(key: string): Promise<string[]> {
    const { results } = await env.DB.prepare("SELECT id FROM runs WHERE idempotency_key = ?").bind(key).all<{ id: string }>();
    return results.map((r) => r.id);
  }

  it("the insert is lost: the API answers 503 with Retry-After, and the client's retry with the same Idempotency-Key creates the one run, which runs once (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const key = `fault-${crypto.randomUUID()}`;
    const task = { target: { type: "http", url }, retry: MANUAL_RETRY };
    d1.failNext({ match: insertRun });

    const failed = await h.api("/v1/tasks", { method: "POST", json: task, headers: { "idempotency-key": key } });
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("5");
    expect(await failed.json()).toMatchObject({ error: { code: "unavailable" } });
    expect(await runsWithKey(key)).toEqual([]);

    const run = await h.enqueue(task, { "idempotency-key": key });
    await h.redeliver(h.lastSent(run.id));

    expect(await runsWithKey(key)).toEqual([run.id]);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("the insert was applied but its answer lost: the API answers 503, the retried request returns that run, and the heartbeat sends its message once it is overdue (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const key = `fault-${crypto.randomUUID()}`;
    const task = { target: { type: "http", url }, retry: MANUAL_RETRY };
    d1.failNext({ match: insertRun, effect: "lost-response" });

    const failed = await h.api("/v1/tasks", { method: "POST", json: task, headers: { "idempotency-key": key } });
    expect(failed.status).toBe(503);
    const replay = await h.api("/v1/tasks", { method: "POST", json: task, headers: { "idempotency-key": key } });
    expect(replay.status).toBe(202);
    const run = await replay.json<{ id: string }>();
    expect(await runsWithKey(key)).toEqual([run.id]);

    await makeDue(run.id, 10 * 60_000);
    await h.tick();
    await h.redeliver(h.lastSent(run.id));
    await h.tick();

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });
});

describe("faults: a D1 error in a bulk enqueue (POST /v1/tasks/batch)", () => {
  /** Statements that bind a target whose URL starts with `prefix`. */
  const bindsTarget = (prefix: string) => (s: BoundStatement) =>
    insertRun(s) && s.params.some((p) => typeof p === "string" && p.includes(prefix));

  it("the inserts travel in one D1 call; a transient error there is retried per task and every task is accepted and sent once (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const targets = [receiverUrl(), receiverUrl(), receiverUrl()];
    d1.failNext({ match: insertRun });

    const res = await h.api("/v1/tasks/batch", {
      method: "POST",
      json: { tasks: targets.map((t) => ({ target: { type: "http", url: t.url } })) },
    });
    const body = await res.json<{ items: { status: number; run?: { id: string } }[] }>();

    expect(d1.broken).toHaveLength(1);
    expect(d1.broken[0]?.filter(insertRun)).toHaveLength(3);
    expect(body.items.map((i) => i.status)).toEqual([202, 202, 202]);
    for (const item of body.items) {
      const id = item.run?.id ?? "";
      expect(h.sentFor(id)).toHaveLength(1);
      await h.redeliver(h.lastSent(id));
      expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded", attempt: 1 });
    }
  });

  it("a D1 error that follows one task fails only that task's item, with 503 (retry it); the others are accepted and sent (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const [bad, good] = [receiverUrl(), receiverUrl()];
    d1.failNext({ match: bindsTarget(bad.prefix) });
    d1.failNext({ match: bindsTarget(bad.prefix) });

    const res = await h.api("/v1/tasks/batch", {
      method: "POST",
      json: { tasks: [{ target: { type: "http", url: bad.url } }, { target: { type: "http", url: good.url } }] },
    });
    const body = await res.json<{ items: { status: number; run?: { id: string }; error?: { code: string } }[] }>();

    expect(body.items[0]).toMatchObject({ status: 503, error: { code: "unavailable", details: { retry_after_seconds: 5 } } });
    expect(body.items[1]?.status).toBe(202);
    const id = body.items[1]?.run?.id ?? "";
    await h.redeliver(h.lastSent(id));
    expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded" });
    expect(await received(good.prefix)).toHaveLength(1);
    expect(await received(bad.prefix)).toHaveLength(0);
  });
});

describe("faults: one message of a batch fails", () => {
  it("a D1 error that follows one message (in the batch's shared claim and again when it is retried alone) retries only that message; the others are acked one by one (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const a = receiverUrl();
    const b = receiverUrl();
    const runA = await h.enqueue({ target: { type: "http", url: a.url }, retry: MANUAL_RETRY });
    const runB = await h.enqueue({ target: { type: "http", url: b.url }, retry: MANUAL_RETRY });
    // The batch's claims travel in one D1 call; A's statement breaks it, and then breaks A's own retry.
    d1.failNext({ match: binding(runA.id, claimRun) });
    d1.failNext({ match: binding(runA.id, claimRun) });

    const { result, thrown } = await deliverBatch(h.env, TASK_QUEUE, [
      { id: "msg-a", body: h.lastSent(runA.id).body },
      { id: "msg-b", body: h.lastSent(runB.id).body },
    ]);

    expect(thrown).toBeUndefined();
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

  it("a transient D1 error in the batch's shared claim: each claim is retried on its own, and every run runs once (every accepted task reaches a final state; no run executes twice)", async () => {
    const { d1, h } = faultyHarness();
    const targets = [receiverUrl(), receiverUrl(), receiverUrl()];
    const runs = [];
    for (const t of targets) runs.push(await h.enqueue({ target: { type: "http", url: t.url }, retry: MANUAL_RETRY }));
    d1.failNext({ match: claimRun });

    const { result } = await deliverBatch(
      h.env,
      TASK_QUEUE,
      runs.map((r, i) => ({ id: `msg-${i}`, body: h.lastSent(r.id).body })),
    );

    expect(d1.broken).toHaveLength(1);
    expect(d1.broken[0]?.filter(claimRun)).toHaveLength(3);
    expect(result.retryMessages).toEqual([]);
    for (const r of runs) expect(await mustStoredRun(r.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    for (const t of targets) expect(await received(t.prefix)).toHaveLength(1);
  });

  it("a dead letter whose run D1 cannot read comes back later on the same back-off; the others are handed back at once, and no run is ended (every accepted task reaches a final state)", async () => {
    const { d1, h } = faultyHarness();
    const { url } = receiverUrl();
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await h.enqueue({ target: { type: "http", url }, delay: 3600 }));
    const [first, second, third] = runs.map((r) => ({ id: `dlq-${r.id}`, body: { run_id: r.id, attempt: 1 } }));
    if (!first || !second || !third) throw new Error("three runs expected");
    const before = await taskStats();
    d1.failNext({ match: binding(second.body.run_id, loadRun) });

    const delivery = await deliverBatch(h.env, DEAD_LETTER_QUEUE, [first, second, third]);

    expect(delivery.thrown).toBeUndefined();
    expect(delivery.result.explicitAcks).toEqual([first.id, third.id]);
    expect(delivery.result.retryMessages).toEqual([{ msgId: second.id, delaySeconds: redeliveryDelaySeconds(1) }]);
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
