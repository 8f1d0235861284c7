import { describe, expect, it } from "vitest";
import { api } from "../helpers/http";
import { received, receiverUrl } from "../helpers/receiver";
import { HIGH_QUEUE, harness, MANUAL_RETRY, mustStoredRun, type RunBody, runReaches, TASK_QUEUE } from "../helpers/runs";

describe("queue: priority", () => {
  it("a high-priority task is sent only to the high queue and succeeds from it", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, priority: "high" });

    expect(h.sentFor(run.id).map((m) => m.queue)).toEqual([HIGH_QUEUE]);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", priority: "high", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a task without a priority is sent to the default queue", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    expect(h.sentFor(run.id).map((m) => m.queue)).toEqual([TASK_QUEUE]);
    expect((await mustStoredRun(run.id)).priority).toBe("default");
  });

  it("the retry of a high-priority run goes back to the high queue", async () => {
    const h = harness();
    const { url } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, priority: "high", retry: MANUAL_RETRY });
    await h.redeliver(h.lastSent(run.id));
    expect(h.sentFor(run.id).map((m) => m.queue)).toEqual([HIGH_QUEUE, HIGH_QUEUE]);
  });

  it("a high-priority task is run to success by the real high-priority consumer", async () => {
    const { url, prefix } = receiverUrl();
    const res = await api("/v1/tasks", { method: "POST", json: { target: { type: "http", url }, priority: "high" } });
    const run = await res.json<RunBody>();
    const done = await runReaches(run.id, ["succeeded", "failed", "dead", "cancelled"]);
    expect(done).toMatchObject({ status: "succeeded", priority: "high", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });
});
