import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { claimRun, faultyHarness } from "../helpers/faults";
import { OutagePlatform, simulatedClock } from "../helpers/outage";
import { received, receiverUrl } from "../helpers/receiver";
import { expireLease, harness, MANUAL_RETRY, mustStoredRun, runReaches, TASK_QUEUE } from "../helpers/runs";

// Invariant: work stuck by a lost answer or a lost message recovers within a
// minute or two: the queue's own redelivery reclaims a run whose lease
// expired, and the heartbeat re-sends a waiting run's lost message a minute
// after it was due.

/** Setup only: the run has been waiting since `ms` ago, its message lost. */
async function waitingSince(runId: string, ms: number): Promise<void> {
  await env.DB.prepare("UPDATE runs SET available_at = ? WHERE id = ?")
    .bind(Date.now() - ms, runId)
    .run();
}

describe("faults: a lost answer or a lost message", () => {
  it("the claim's answer was lost: the redelivery comes back just after the lease expires and reclaims the run itself, so it succeeds about a minute later with no heartbeat at all", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const started = clock.now();
    const platform = new OutagePlatform(h, clock, { healAt: started, heal: () => undefined }, false);
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    d1.failNext({ match: claimRun, effect: "lost-response" });

    await platform.run();

    const [message] = [...platform.history.values()];
    // Failed on the lost answer (2 s), then found its attempt running and came back after the lease (30 s timeout + 30 s grace).
    expect(message?.delays[0]).toBe(2);
    expect(message?.delays[1]).toBeGreaterThanOrEqual(59);
    expect(message?.delays[1]).toBeLessThanOrEqual(62);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
    expect(clock.now() - started).toBeLessThan(2 * 60_000);
  });

  it("a waiting run whose message was lost is re-sent by the heartbeat once it is a minute overdue, not five", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    expect(LOST_MESSAGE_MS).toBe(60_000);

    await waitingSince(run.id, 30_000);
    await h.tick();
    expect(h.sentFor(run.id)).toHaveLength(1);

    await waitingSince(run.id, 90_000);
    await h.tick();
    await h.tick();
    expect(h.sentFor(run.id)).toHaveLength(2);
    await h.redeliver(h.lastSent(run.id));
    await h.redeliver(h.sentFor(run.id)[0] ?? h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("after the heartbeat resumes from a gap (D1 was down), it leaves expired leases alone for 6 minutes, long enough for an outcome on its way to be recorded, then reclaims them", async () => {
    const clock = simulatedClock();
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=300");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await h.tick();
    // A consumer claimed the run and vanished; then the ticks stopped for five minutes.
    const lost = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);
    await expireLease(run.id);
    clock.advance(5 * 60_000);

    // The heartbeat ticks every minute again.
    const resumed = clock.now();
    while (clock.now() < resumed + OUTCOME_GRACE_MS) {
      await h.tick();
      expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
      clock.advance(60_000);
    }
    await h.tick();
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    await lost;
    await h.redeliver(h.lastSent(run.id));
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(2);
  });
});
