import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RETRY_AFTER_SECONDS } from "../../src/errors";
import { MAX_REDELIVERIES, MAX_REDELIVERY_SECONDS, redeliveryWindowSeconds } from "../../src/execution/redelivery";
import {
  type BoundStatement,
  claimRun,
  faultyHarness,
  jobStats,
  jobsDeletedAfterEach,
  switchableHostGuards,
  useBindingsInJobObject,
} from "../helpers/faults";
import { type MessageHistory, OUTAGE_MS, OutagePlatform, simulatedClock } from "../helpers/outage";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, mustStoredRun, NO_CHANGE, type RunBody, statsDelta, TASK_QUEUE, taskStats } from "../helpers/runs";

// Invariant: an outage defers work, it never kills it. D1 (or a host's guard)
// fails every call for 15 simulated minutes at one step of a run's life; the
// queue redelivers on the delays the consumer asks for, the heartbeat ticks
// every minute, and then storage heals. Every accepted task ends `succeeded`,
// recorded and counted once, its target called once; no message runs out of
// retries, no run goes `dead`, and no alert or failure callback is sent.

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
  const { results } = await env.DB.prepare("SELECT count(*) AS n FROM runs WHERE parent_run_id = ?").bind(runId).all<{ n: number }>();
  expect(results[0]?.n).toBe(0);
}

describe("faults: a 15-minute D1 outage at each step of a task's life", () => {
  it("enqueue: POST /v1/tasks answers 503 with Retry-After throughout; the client's retry after it heals is accepted and runs once", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const key = `outage-${crypto.randomUUID()}`;
    const healAt = clock.now() + OUTAGE_MS;
    const platform = new OutagePlatform(h, clock, { healAt, heal: () => d1.heal() });
    await platform.heartbeat();
    d1.down();

    // The client retries as Retry-After says until it is accepted.
    let refused = 0;
    let accepted: Response | undefined;
    while (!accepted) {
      if (clock.now() >= healAt) d1.heal();
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
    const { results } = await env.DB.prepare("SELECT id FROM runs WHERE idempotency_key = ?").bind(key).all<{ id: string }>();
    expect(results.map((r) => r.id)).toEqual([run.id]);
  });

  it("claim: the queued run's message backs off through the outage within its retries, and the run starts once D1 answers", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => d1.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    d1.down();

    await platform.run();

    const [retried] = expectBackedOffWithinRetries(platform);
    // 2 + 4 + ... + 256 + 300 + 300 s: the 11th delivery is the first after the outage.
    expect(retried?.delays).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    expect(platform.ticks.threw).toBeGreaterThanOrEqual(14);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("finish: the attempt's outcome, which D1 could not record, travels in its own message until D1 takes it; the expired lease is not reclaimed meanwhile and the target is not called again", async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    // D1 goes down right after the claim: the target answers, and its result cannot be written.
    let claimed = false;
    const afterTheClaim = (s: BoundStatement) => {
      if (!claimed && claimRun(s)) claimed = true;
      else return claimed;
      return false;
    };
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => d1.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    d1.down({ match: afterTheClaim });

    await platform.run();

    const retried = expectBackedOffWithinRetries(platform);
    expect(retried.map((m) => m.body.outcome?.status)).toEqual(["succeeded"]);
    // The outcome came back 5 minutes after its previous try: heartbeats ticked in between,
    // with the run's lease long expired, and left it to the outcome.
    expect(retried[0]?.delays.at(-1)).toBe(MAX_REDELIVERY_SECONDS);
    expect(platform.ticks.afterHeal).toBeGreaterThanOrEqual(1);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    const stored = await mustStoredRun(run.id);
    // Recorded as the attempt ended, not when D1 came back.
    expect((stored.finished_at ?? 0) - (stored.started_at ?? 0)).toBeLessThan(5_000);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
  });

  it("host guard: the host's HostGuard fails every call; the claim is given back each time (no attempt spent) and the run runs once it answers", async () => {
    const clock = simulatedClock();
    const guards = switchableHostGuards();
    const h = harness({ HOST_GUARD: guards.namespace });
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const before = await taskStats();
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => guards.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    guards.down();

    await platform.run();

    const [retried] = expectBackedOffWithinRetries(platform);
    expect(retried?.delays).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    expect(guards.refused()).toBe(10);
    // The heartbeat ran all along (D1 was up), and never took the waiting run for lost.
    expect(platform.ticks.ran).toBeGreaterThanOrEqual(15);
    expect(h.sentFor(run.id)).toHaveLength(1);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, succeeded: 1 });
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

  it.each(["claim", "finish"] as const)("%s: the job's run succeeds once, is counted once, and no alert is sent", async (step) => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const alert = receiverUrl();
    const run = await jobRunDuringOutage(h, url, alert.url);
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + OUTAGE_MS, heal: () => d1.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    await platform.heartbeat();
    let claimed = false;
    d1.down({
      match: (s) => {
        if (step === "claim") return true;
        if (!claimed && claimRun(s)) claimed = true;
        else return claimed;
        return false;
      },
    });

    await platform.run();

    expectBackedOffWithinRetries(platform);
    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
    const jobId = (run as RunBody & { job_id: string }).job_id;
    expect(await jobStats(jobId)).toMatchObject({ succeeded: 1, failed: 0, dead: 0 });
    const alerts = await env.DB.prepare("SELECT count(*) AS n FROM runs WHERE target LIKE ?")
      .bind(`%${alert.prefix}%`)
      .first<{ n: number }>();
    expect(alerts?.n).toBe(0);
  });
});

describe("faults: an outage longer than every redelivery", () => {
  it(`a message that exhausted its ${MAX_REDELIVERIES} retries (${Math.round(redeliveryWindowSeconds() / 60)} min) is dead-lettered; the dead-letter consumer hands the run back (backing off itself while D1 is down) and the run succeeds once`, async () => {
    const clock = simulatedClock();
    const { d1, h } = faultyHarness();
    const { url, prefix } = receiverUrl();
    const failure = receiverUrl();
    const run = await h.enqueue(onceOnlyTask(url, failure.url));
    const outageMs = redeliveryWindowSeconds() * 1000 + 10 * 60_000;
    const platform = new OutagePlatform(h, clock, { healAt: clock.now() + outageMs, heal: () => d1.heal() });
    platform.enqueue(TASK_QUEUE, h.lastSent(run.id).body);
    d1.down();

    await platform.run(600);

    expect(platform.deadLettered).toHaveLength(1);
    const deadLetter = [...platform.history.values()].find((m) => m.queue === "taskflare-dead-letter");
    expect(deadLetter?.delays.length).toBeGreaterThan(0);
    // The hand-back: the run's attempt is sent again, and runs.
    expect(h.sentFor(run.id).length).toBeGreaterThanOrEqual(2);
    await expectSucceededOnce(run.id, prefix, failure.prefix);
  });
});
