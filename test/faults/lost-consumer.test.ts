import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cronTick } from "../helpers/faults";
import { received, receiverUrl } from "../helpers/receiver";
import { expireLease, harness, MANUAL_RETRY, mustStoredRun, NO_CHANGE, runReaches, statsDelta, taskStats } from "../helpers/runs";

// Invariants: every accepted task reaches a final state, and no run executes
// twice unless a retry was due. A consumer can die after claiming a run (an
// isolate evicted, a deploy): the run is left `running` with a lease that the
// heartbeat reclaims once it expires.

/** Setup only: a consumer claimed the run's first attempt and died before calling the target. */
async function claimedByADeadConsumer(runId: string): Promise<void> {
  const past = Date.now() - 60_000;
  await env.DB.prepare(
    "UPDATE runs SET status = 'running', attempt = 1, started_at = ?, lease_expires_at = ?, available_at = ? WHERE id = ?",
  )
    .bind(past - 60_000, past, past, runId)
    .run();
}

describe("faults: a consumer that dies after starting a run", () => {
  it("a consumer hung on its target: the heartbeat reclaims the run when the lease expires and the retry succeeds; the target saw at most two requests (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=400");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const before = await taskStats();
    const hung = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);
    await expireLease(run.id);

    await cronTick(h.env, Date.now());
    const retry = h.lastSent(run.id);
    expect(retry.body).toEqual({ run_id: run.id, attempt: 2 });
    await h.redeliver(retry);
    await hung;

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect((await received(prefix)).length).toBeLessThanOrEqual(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("a run left running with an expired lease is reclaimed by the heartbeat and its retry calls the target once (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await claimedByADeadConsumer(run.id);

    await cronTick(h.env, Date.now());
    const reclaimed = await mustStoredRun(run.id);
    expect(reclaimed).toMatchObject({ status: "retrying", attempt: 1 });
    expect(JSON.stringify(reclaimed.error)).toContain("lease expired");
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("the dead consumer's message, redelivered by the queue after the retry succeeded, does not run the target again (no run executes twice unless a retry was due)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const first = h.lastSent(run.id);
    await claimedByADeadConsumer(run.id);
    await cronTick(h.env, Date.now());
    await h.redeliver(h.lastSent(run.id));
    const before = await taskStats();

    const late = await h.redeliver(first);

    expect(late.explicitAcks).toHaveLength(1);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await received(prefix)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual(NO_CHANGE);
  });

  it("a consumer that died on the run's last attempt: the heartbeat marks the run dead and counts it once, even when ticked twice (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    await claimedByADeadConsumer(run.id);
    const before = await taskStats();

    await cronTick(h.env, Date.now());
    await cronTick(h.env, Date.now());
    await h.redeliver(h.lastSent(run.id));

    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 1 });
    expect(JSON.stringify(dead.error)).toContain("lease expired");
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(0);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });

  it("a live attempt is not reclaimed: a tick while the target is still answering leaves it running, and it runs once (no run executes twice unless a retry was due)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=400");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const inFlight = h.redeliver(h.lastSent(run.id));
    const running = await runReaches(run.id, ["running"]);
    expect(running.lease_expires_at).toBeGreaterThan(Date.now() + 30_000);

    await cronTick(h.env, Date.now());
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    await inFlight;

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });
});
