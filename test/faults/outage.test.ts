import { describe, expect, it } from "vitest";
import { RETRY_AFTER_SECONDS } from "../../src/errors";
import { HANDBACK_DELAY_SECONDS } from "../../src/execution/dead-letters";
import { MAX_REDELIVERIES, MAX_REDELIVERY_SECONDS, redeliveryWindowSeconds } from "../../src/execution/redelivery";
import {
  faultyShardHarness,
  jobStats,
  jobsDeletedAfterEach,
  type ShardCall,
  switchableHostGuards,
  useBindingsInJobObject,
  withTaskShardAlarms,
} from "../helpers/faults";
import { type MessageHistory, OUTAGE_MS, OutagePlatform, simulatedClock } from "../helpers/outage";
import { taskRunsWhere, tasksWithKey } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, mustStoredRun, NO_CHANGE, type RunBody, statsDelta, TASK_QUEUE, taskStats } from "../helpers/runs";

// Invariant: an outage defers work, it never kills it. A task's shard (or a
// host's guard, or D1) fails every call for 15 simulated minutes at one step
// of a run's life, its own alarm with it; the queue redelivers on the delays
// the consumer asks for, the heartbeat ticks and each shard's alarm fires
// (its upkeep) every minute, and then the outage ends. Every accepted task
// ends `succeeded`, recorded and counted once, its target called once; no
// message runs out of retries, no run goes `dead`, and no alert or failure
// callback is sent.

const jobs = jobsDeletedAfterEach("outage");

/** A task that may run once only (`max_attempts: 1`): an outage that spent its attempt would make it dead. */
function onceOnlyTask(url: string, failureCallbackUrl: string) {
  return { target: { type: "http", url }, retry: { max_attempts: 1 }, failure_callback: { type: "http", url: failureCallbackUrl } };
}

/** No message ran out of its retries; the redeliveries backed off from 2 s up to 5 minutes. */
function expectBackedOffWithinRetries(platform: OutagePlatform): MessageHistory[] {
  expect(platform.deadLettered).toEqual([]);
  const retried = [...platform.history.values()].filter((m) => m.delays.length > 0);
  for (const message of retried) {
    expect(message.deliveries).toBeLessThanOrEqual(MAX_REDELIVERIES + 1);
    expect(message.delays[0]).toBe(2);
    for (let i = 1; i < message.delays.length; i++) {
      expect(message.delays[i]).toBe(Math.min(MAX_REDELIVERY_SECONDS, 2 * (message.delays[i - 1] ?? 0)));
    }
  }
  return retried;
}

/** What must hold once the platform has run: the run succeeded once, its target was called once, nothing failed. */
async function expectSucceededOnce(runId: string, prefix: string, failurePrefix: string): Promise<void> {
  expect(await mustStoredRun(runId)).toMatchObject({ status: "succeeded", attempt: 1 });
  expect(await received(prefix)).toHaveLength(1);
  expect(await received(failurePrefix)).toHaveLength(0);
  expect(await taskRunsWhere((r) => r.parentRunId === runId)).toEqual([]);
}

/** Every call after the first claimRuns (the shard goes down right after it claimed the attempt). */
function afterTheClaim(): (call: ShardCall) => boolean {
  let claimed = false;
  return (call) => {
    if (!claimed && call.method === "claimRuns") {
      claimed = true;
      return false;
    }
    return claimed;
  };
}

describe("faults: a 15-minute task shard outage at each step of a task's life", () => {
  it("enqueue: POST /v1/tasks answers 503 with Retry-After throughout; the client's retry after it heals is accepted and runs once", async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const key = `outage-${crypto.randomUUID()}`;
    const healAt = clock.now() + OUTAGE_MS;
    const platform = new OutagePlatform(await withTaskShardAlarms(h, shards.isDown), clock, { healAt, heal: () => shards.heal() });
    await platform.heartbeat();
    shards.down();

    // The client retries as Retry-After says until it is accepted.
    let refused = 0;
    let accepted: Response | undefined;
    while (!accepted) {
      if (clock.now() >= healAt) shards.heal();
      const res = await h.api("/v1/tasks", { method: "POST", json: onceOnlyTask(url, failure.url), headers: { "idempotency-key": key } });
      if (res.status === 202) accepted = res;
      else {
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ error: { code: "unavailable" } });
        refused++;
        clock.advance(Number(res.headers.get("retry-after")) * 1000);
      }
    }
    expect(refused).toBe(Math.ceil(OUTAGE_MS / 1000 / RETRY_AFTER_SECONDS));
    const run = await accepted.json<RunBody>();
    await platform.run();

    expectBackedOffWithinRetries(platform);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    expect((await tasksWithKey(key)).map((r) => r.id)).toEqual([run.id]);
  });

  it("claim: the queued run's message backs off through the outage within its retries, the shard's upkeep re-sends it once back, and the run starts once the shard answers", async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    const healAt = clock.now() + OUTAGE_MS;
    const platform = new OutagePlatform(await withTaskShardAlarms(h, shards.isDown), clock, { healAt, heal: () => shards.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    shards.down();

    await platform.run();

    const [retried] = expectBackedOffWithinRetries(platform);
    // 2 + 4 + ... + 256 + 300 + 300 s: the 11th delivery is the first after the outage. The
    // shard's alarm did not run while it was down; once back, its upkeep re-sent the run too.
    expect(retried?.delays).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    expect(h.sentFor(run.id).length).toBeGreaterThanOrEqual(2);
    expect((await mustStoredRun(run.id)).started_at).toBeGreaterThanOrEqual(healAt);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("finish: the attempt's outcome, which the shard could not record, travels in its own message until the shard takes it; the shard's upkeep, back late, holds the long-expired lease meanwhile, and the target is not called again", async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    // The shard goes down right after the claim: the target answers, and its result cannot be recorded.
    const platformHarness = await withTaskShardAlarms(h, shards.isDown);
    const platform = new OutagePlatform(platformHarness, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => shards.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    shards.down({ match: afterTheClaim() });

    await platform.run();

    const retried = expectBackedOffWithinRetries(platform);
    expect(retried.map((m) => m.body.outcome?.status)).toEqual(["succeeded"]);
    // The outcome came back 5 minutes after its previous try: the shard's alarm fired in
    // between, with the run's lease long expired, and left it to the outcome.
    expect(retried[0]?.delays.at(-1)).toBe(MAX_REDELIVERY_SECONDS);
    expect(platform.ticks.afterHeal).toBeGreaterThanOrEqual(1);
    expect(platformHarness.alarmsRan()).toBeGreaterThanOrEqual(1);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    const stored = await mustStoredRun(run.id);
    // Recorded as the attempt ended, not when the shard came back.
    expect((stored.finished_at ?? 0) - (stored.started_at ?? 0)).toBeLessThan(5_000);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("host guard: the host's HostGuard fails every call; the claim is given back each time (no attempt spent), the shard's upkeep never takes the waiting run for lost, and the run runs once the guard answers", async () => {
    const clock = simulatedClock();
    const guards = switchableHostGuards();
    const h = harness({ HOST_GUARD: guards.namespace });
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    const platformHarness = await withTaskShardAlarms(h);
    const platform = new OutagePlatform(platformHarness, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => guards.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    guards.down();

    await platform.run();

    const [retried] = expectBackedOffWithinRetries(platform);
    expect(retried?.delays).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    expect(guards.refused()).toBe(10);
    // The heartbeat and the shard's alarm ran all along, and never took the waiting run for lost.
    expect(platform.ticks.ran).toBeGreaterThanOrEqual(15);
    expect(platformHarness.alarmsRan()).toBeGreaterThanOrEqual(1);
    expect(h.sentFor(run.id)).toHaveLength(1);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });
});

describe("faults: a 15-minute D1 outage under a task's run (D1 keeps only its statistics and the failure index)", () => {
  it("tasks are accepted and run throughout; once D1 answers, the failed one enters the failure index and its failure callback is sent, each once, and the statistics count each run once", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyShardHarness();
    const ok = receiverUrl();
    const bad = receiverUrl("status=400");
    const callback = receiverUrl();
    const before = await taskStats();
    const platform = new OutagePlatform(await withTaskShardAlarms(h, () => false, { DB: d1.db }), clock, {
      healAt: clock.now() + OUTAGE_MS,
      heal: () => d1.heal(),
    });
    d1.down();

    const good = await h.enqueue({ target: { type: "http", url: ok.url } });
    const failing = await h.enqueue({
      target: { type: "http", url: bad.url },
      retry: { max_attempts: 1 },
      failure_callback: { type: "http", url: callback.url },
    });
    await platform.run();

    expect(platform.deadLettered).toEqual([]);
    expect(platform.ticks.threw).toBeGreaterThanOrEqual(14);
    expect(await mustStoredRun(good.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await mustStoredRun(failing.id)).toMatchObject({ status: "failed", attempt: 1 });
    expect(await received(ok.prefix)).toHaveLength(1);
    expect(await received(bad.prefix)).toHaveLength(1);
    expect(await received(callback.prefix)).toHaveLength(1);
    const failures = await (await h.api("/v1/runs?status=failed&limit=100")).json<{ items: { id: string }[] }>();
    expect(failures.items.filter((r) => r.id === failing.id)).toHaveLength(1);
    const stats = statsDelta(before, await taskStats());
    // The failure callback is a task of its own, and succeeded.
    expect(stats).toEqual({ ...NO_CHANGE, succeeded: 2, failed: 1 });
  });
});

describe("faults: a 15-minute D1 outage under a job's run", () => {
  async function jobRunDuringOutage(h: Harness, url: string, alertUrl: string): Promise<RunBody> {
    const job = await jobs.yearly(url, {
      retry: { max_attempts: 1 },
      alerts: { target: { type: "http", url: alertUrl }, on_dead: true, after_consecutive_failures: 1 },
    });
    await useBindingsInJobObject(job.id, { TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE });
    const started = await h.api(`/v1/jobs/${job.id}/run`, { method: "POST" });
    expect(started.status).toBe(202);
    return started.json<RunBody & { job_id: string }>();
  }

  // Runs used to be claimed and recorded in D1, and a D1 outage at the claim or at the finish
  // was two cases; both are now one: D1 is down under the consumer for the run's whole life.
  it("D1 down from the claim to the end: the job's run succeeds once (D1 is off its path), is counted once, and no alert is sent", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const alert = receiverUrl();
    const run = await jobRunDuringOutage(h, url, alert.url);
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => d1.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    d1.down();

    await platform.run();

    expectBackedOffWithinRetries(platform);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(((await mustStoredRun(run.id)).finished_at ?? Infinity) - clock.now()).toBeLessThan(0);
    expect(await received(prefix)).toHaveLength(1);
    const jobId = (run as RunBody & { job_id: string }).job_id;
    expect(await jobStats(jobId)).toMatchObject({ succeeded: 1, failed: 0, dead: 0 });
    expect(await taskRunsWhere((r) => JSON.stringify(r.target).includes(alert.prefix))).toEqual([]);
    expect(await received(alert.prefix)).toHaveLength(0);
  });
});

describe("faults: an outage longer than every redelivery", () => {
  it(`a message that exhausted its ${MAX_REDELIVERIES} retries (${Math.round(redeliveryWindowSeconds() / 60)} min) while its shard was down is dead-lettered; the dead-letter consumer hands the run back (backing off itself while the shard is down) and the run succeeds once, without the shard's upkeep`, async () => {
    const clock = simulatedClock();
    const { shards, h } = faultyShardHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const outageMs = redeliveryWindowSeconds() * 1000 + 10 * 60_000;
    // The shards' alarms and the heartbeat's nudges of them stay out of it: only the queue and its
    // dead-letter consumer recover the run.
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + outageMs, heal: () => shards.heal() }, false);
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    shards.down();

    await platform.run(600);

    expect(platform.deadLettered).toHaveLength(1);
    const deadLetter = [...platform.history.values()].find((m) => m.queue === "taskflare-dead-letter");
    expect(deadLetter?.delays.length).toBeGreaterThan(0);
    // The hand-back: the run's attempt is sent again, with the back-off's last step, and runs.
    const handedBack = h.sentFor(run.id).slice(1);
    expect(handedBack).toHaveLength(1);
    expect(handedBack[0]?.delaySeconds).toBeGreaterThanOrEqual(HANDBACK_DELAY_SECONDS - 1);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
  });
});
