import { describe, expect, it } from "vitest";
import { faultyShardHarness } from "../helpers/faults";
import { received, receiverUrl } from "../helpers/receiver";
import { MANUAL_RETRY, mustStoredRun, TASK_QUEUE } from "../helpers/runs";

/** Enqueues tasks in one bulk call (so they share a shard) and returns their ids. */
async function enqueueTogether(h: ReturnType<typeof faultyShardHarness>["h"], urls: string[]): Promise<string[]> {
  const res = await h.api("/v1/tasks/batch", {
    method: "POST",
    json: { tasks: urls.map((url) => ({ target: { type: "http", url }, retry: MANUAL_RETRY })) },
  });
  const body = await res.json<{ items: { run?: { id: string } }[] }>();
  return body.items.map((item) => item.run?.id ?? "");
}

describe("queue: a batch's results", () => {
  it("attempts whose targets answer at different times are recorded in one finishRuns call to their shard", async () => {
    const { shards, h } = faultyShardHarness();
    const targets = [receiverUrl(), receiverUrl("delay_ms=60"), receiverUrl("delay_ms=120")];
    const ids = await enqueueTogether(
      h,
      targets.map((t) => t.url),
    );
    const callsBefore = shards.calls.length;

    await h.deliver(
      TASK_QUEUE,
      ids.map((id) => h.lastSent(id).body),
    );

    const finishes = shards.calls.slice(callsBefore).filter((c) => c.method === "finishRuns");
    expect(finishes.map((c) => (c.args[1] as { id: string }[]).map((item) => item.id).sort())).toEqual([[...ids].sort()]);
    for (const [i, id] of ids.entries()) {
      expect(await mustStoredRun(id)).toMatchObject({ status: "succeeded", attempt: 1 });
      expect(await received(targets[i]?.prefix ?? "")).toHaveLength(1);
    }
  });

  it("a slow target does not hold up the others' results: they are recorded before it answers", async () => {
    const { shards, h } = faultyShardHarness();
    const fast = receiverUrl();
    const slow = receiverUrl("delay_ms=1500");
    const [fastId = "", slowId = ""] = await enqueueTogether(h, [fast.url, slow.url]);
    const callsBefore = shards.calls.length;

    await h.deliver(TASK_QUEUE, [h.lastSent(fastId).body, h.lastSent(slowId).body]);

    const finishes = shards.calls.slice(callsBefore).filter((c) => c.method === "finishRuns");
    expect(finishes.map((c) => (c.args[1] as { id: string }[]).map((item) => item.id))).toEqual([[fastId], [slowId]]);
    expect(await mustStoredRun(fastId)).toMatchObject({ status: "succeeded" });
    expect(await mustStoredRun(slowId)).toMatchObject({ status: "succeeded" });
  });
});
