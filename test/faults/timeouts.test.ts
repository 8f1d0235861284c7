import { describe, expect, it } from "vitest";
import { cronTick } from "../helpers/faults";
import { runOwnerAlarm, shardOf, useBindingsInTaskShards } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { harness, MANUAL_RETRY, makeDue, mustStoredRun, NO_CHANGE, runReaches, statsDelta, taskStats } from "../helpers/runs";

// Invariants: every accepted task reaches a final state — a target that
// never answers is aborted at the run's timeout, and the run retries or dies;
// it never stays `running`. No run executes twice unless a retry was due.

const HANGS = "delay_ms=4000";

describe("faults: a target that hangs past its timeout", () => {
  it("the attempt is aborted at the timeout and retried; the last one dies; the run never stays running (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl(HANGS);
    const run = await h.enqueue({ target: { type: "http", url }, timeout: 1, retry: { ...MANUAL_RETRY, max_attempts: 2 } });
    const before = await taskStats();

    const started = Date.now();
    await h.redeliver(h.lastSent(run.id));
    const first = await mustStoredRun(run.id);
    expect(Date.now() - started).toBeLessThan(3_500);
    expect(first).toMatchObject({ status: "retrying", attempt: 1, lease_expires_at: null });
    expect(JSON.stringify(first.error)).toContain("timed out");

    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));

    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 2, lease_expires_at: null });
    expect(JSON.stringify(dead.error)).toContain("timed out");
    expect(await received(prefix)).toHaveLength(2);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });

  it("with no retries left the timed-out attempt ends the run as dead at once, with a duration near the timeout (every accepted task reaches a final state)", async () => {
    const h = harness();
    const { url } = receiverUrl(HANGS);
    const run = await h.enqueue({ target: { type: "http", url }, timeout: 1, retry: { ...MANUAL_RETRY, max_attempts: 1 } });

    await h.redeliver(h.lastSent(run.id));

    const dead = await mustStoredRun(run.id);
    expect(dead.status).toBe("dead");
    const took = (dead.finished_at ?? Infinity) - (dead.started_at ?? 0);
    expect(took).toBeGreaterThanOrEqual(1_000);
    expect(took).toBeLessThan(3_500);
  });

  it("a heartbeat and the shard's upkeep during the hung attempt do not take it back: the lease outlasts the timeout, so the target is not called twice (no run executes twice unless a retry was due)", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl(HANGS);
    const run = await h.enqueue({ target: { type: "http", url }, timeout: 1, retry: MANUAL_RETRY });
    await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE }, [shardOf(run.id)]);
    const inFlight = h.redeliver(h.lastSent(run.id));
    const running = await runReaches(run.id, ["running"]);
    expect(running.lease_expires_at).toBeGreaterThan((running.started_at ?? 0) + 1_000);

    await cronTick(h.env, Date.now());
    await runOwnerAlarm(run.id);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    await inFlight;

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "retrying", attempt: 1 });
    expect(h.sentFor(run.id).map((m) => m.body.attempt)).toEqual([1, 2]);
    expect(await received(prefix)).toHaveLength(1);
  });
});
