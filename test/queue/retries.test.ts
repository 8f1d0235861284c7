import { describe, expect, it } from "vitest";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, makeDue, mustStoredRun, NO_CHANGE, type RunBody, statsDelta, taskStats } from "../helpers/runs";

interface Policy {
  max_attempts: number;
  backoff: number;
  max_delay: number;
}

/** Equal jitter (src/execution/backoff.ts): whole seconds between half and all of min(backoff * 2^(attempt-1), max_delay). */
function jitterWindow(attempt: number, policy: Policy): { lo: number; hi: number } {
  const ceiling = Math.min(policy.backoff * 2 ** (attempt - 1), policy.max_delay);
  return { lo: Math.ceil(ceiling / 2), hi: Math.ceil(ceiling) };
}

/** Delivers the run's latest message and reports when the attempt happened and when the next one is due. */
async function attemptOnce(h: Harness, runId: string) {
  const started = Date.now();
  await h.redeliver(h.lastSent(runId));
  const ended = Date.now();
  const run = await mustStoredRun(runId);
  const api = await (await h.api(`/v1/runs/${runId}`)).json<RunBody>();
  return { started, ended, run, api, next: h.lastSent(runId) };
}

describe("queue: retry timing", () => {
  it("after a 503 the run is retrying and its next attempt is due within equal jitter of the backoff", async () => {
    const h = harness();
    const policy = { max_attempts: 5, backoff: 10, max_delay: 300 };
    const { url } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: policy });

    const { started, ended, run: stored, api, next } = await attemptOnce(h, run.id);

    const { lo, hi } = jitterWindow(1, policy);
    expect(stored).toMatchObject({ status: "retrying", attempt: 1 });
    expect(stored.available_at).toBeGreaterThanOrEqual(started + lo * 1000);
    expect(stored.available_at).toBeLessThanOrEqual(ended + hi * 1000);
    expect(api.next_attempt_at).toBe(new Date(stored.available_at).toISOString());
    // The retry message is delayed to arrive by the time the attempt is due: in whole
    // seconds rounded down, so up to a second ahead; the consumer holds it until due_at.
    expect(next.body).toEqual({ run_id: run.id, attempt: 2, due_at: stored.available_at });
    expect(next.delaySeconds).toBeGreaterThanOrEqual(lo - 1);
    expect(next.delaySeconds).toBeLessThanOrEqual(hi);
  });

  it("each later retry doubles the backoff window and the attempt counter counts every attempt", async () => {
    const h = harness();
    const policy = { max_attempts: 4, backoff: 10, max_delay: 300 };
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: policy });

    for (const attempt of [1, 2, 3]) {
      const { started, ended, run: stored, next } = await attemptOnce(h, run.id);
      const { lo, hi } = jitterWindow(attempt, policy);
      expect(stored).toMatchObject({ status: "retrying", attempt });
      expect(stored.available_at - started).toBeGreaterThanOrEqual(lo * 1000);
      expect(stored.available_at - ended).toBeLessThanOrEqual(hi * 1000);
      expect(next.body.attempt).toBe(attempt + 1);
      await makeDue(run.id);
    }
    expect(await received(prefix)).toHaveLength(3);
  });

  it("no retry waits longer than max_delay", async () => {
    const h = harness();
    const policy = { max_attempts: 5, backoff: 100, max_delay: 30 };
    const { url } = receiverUrl("status=500");
    const run = await h.enqueue({ target: { type: "http", url }, retry: policy });

    const { started, ended, run: stored } = await attemptOnce(h, run.id);

    expect(stored.available_at).toBeGreaterThanOrEqual(started + 15_000);
    expect(stored.available_at).toBeLessThanOrEqual(ended + 30_000);
  });

  it("a Retry-After of 120 s is honoured even when the backoff is shorter", async () => {
    const h = harness();
    const { url } = receiverUrl("status=503&retry_after=120");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 1, max_delay: 300 } });

    const { started, run: stored, next } = await attemptOnce(h, run.id);

    expect(stored.status).toBe("retrying");
    expect(stored.available_at).toBeGreaterThanOrEqual(started + 120_000);
    expect(next.delaySeconds).toBeGreaterThanOrEqual(119); // whole seconds, rounded down: held until due_at
    expect(next.body.due_at).toBe(stored.available_at);
  });

  it("a Retry-After longer than the policy's max_delay waits max_delay: a target cannot park a run for days", async () => {
    const h = harness();
    const { url } = receiverUrl("status=503&retry_after=86400");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 1, max_delay: 10 } });

    const { started, ended, run: stored } = await attemptOnce(h, run.id);

    expect(stored.status).toBe("retrying");
    expect(stored.available_at).toBeGreaterThanOrEqual(started + 10_000);
    expect(stored.available_at).toBeLessThanOrEqual(ended + 10_000);
  });

  it("a Retry-After on a 429 is honoured too", async () => {
    const h = harness();
    const { url } = receiverUrl("status=429&retry_after=90");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 1, max_delay: 300 } });

    const { started, run: stored } = await attemptOnce(h, run.id);

    expect(stored.status).toBe("retrying");
    expect(stored.available_at).toBeGreaterThanOrEqual(started + 90_000);
  });

  it("a run whose attempts are exhausted is dead with the last attempt's error stored, counted once, and not sent again", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 3, backoff: 1, max_delay: 1 } });
    const before = await taskStats();

    for (let attempt = 1; attempt <= 3; attempt++) {
      await h.redeliver(h.lastSent(run.id));
      await makeDue(run.id);
    }

    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 3, result: null });
    expect(dead.error).toMatchObject({ message: "target answered 503", status: 503, attempt: 3 });
    expect(dead.finished_at).not.toBeNull();
    expect(await received(prefix)).toHaveLength(3);
    expect(h.sentFor(run.id)).toHaveLength(3);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, dead: 1 });
  });

  it("a run that fails twice and then succeeds ends succeeded on attempt 3 with the success's result and no error", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503&fail_times=2");
    const run = await h.enqueue({ target: { type: "http", url }, retry: { max_attempts: 5, backoff: 1, max_delay: 1 } });

    for (let attempt = 1; attempt <= 3; attempt++) {
      await h.redeliver(h.lastSent(run.id));
      await makeDue(run.id);
    }

    const done = await mustStoredRun(run.id);
    expect(done).toMatchObject({ status: "succeeded", attempt: 3, error: null });
    expect(done.result).toMatchObject({ status: 200 });
    expect(await received(prefix)).toHaveLength(3);
  });
});
