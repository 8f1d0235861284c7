import { describe, expect, it } from "vitest";
import { api, type ErrorBody } from "../helpers/http";
import { runsOfOwnerOf, tasksWithKey } from "../helpers/owners";
import { received, receiverUrl } from "../helpers/receiver";
import {
  type Harness,
  harness,
  MANUAL_RETRY,
  mustStoredRun,
  NO_CHANGE,
  type RunBody,
  runReaches,
  statsDelta,
  taskStats,
} from "../helpers/runs";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

function cancel(h: Harness, id: string) {
  return h.api(`/v1/runs/${id}/cancel`, { method: "POST" });
}

function retry(h: Harness, id: string) {
  return h.api(`/v1/runs/${id}/retry`, { method: "POST" });
}

describe("POST /v1/runs/:id/cancel", () => {
  it("a queued run that is cancelled never starts, even when its message arrives", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    expect(run.status).toBe("queued");
    const before = await taskStats();

    const res = await cancel(h, run.id);
    expect(res.status).toBe(200);
    expect((await res.json<RunBody>()).status).toBe("cancelled");
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "cancelled", attempt: 0, started_at: null });
    expect(await received(prefix)).toHaveLength(0);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, cancelled: 1 });
  });

  it("a scheduled run that is cancelled never starts, even when its message arrives after it is due", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, delay: 3600 });
    expect(run.status).toBe("scheduled");

    expect((await cancel(h, run.id)).status).toBe(200);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "cancelled", attempt: 0 });
    expect(await received(prefix)).toHaveLength(0);
  });

  it("a retrying run that is cancelled never starts its next attempt", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=503");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    await h.redeliver(h.lastSent(run.id));
    expect((await mustStoredRun(run.id)).status).toBe("retrying");

    expect((await cancel(h, run.id)).status).toBe(200);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "cancelled", attempt: 1 });
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a running run is cancelled at once; its attempt's result is ignored and it is counted cancelled once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("delay_ms=500");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const before = await taskStats();
    const inFlight = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);

    const res = await cancel(h, run.id);
    expect(res.status).toBe(200);
    const cancelledAt = await mustStoredRun(run.id);
    expect(cancelledAt.status).toBe("cancelled");
    await inFlight;

    expect(await mustStoredRun(run.id)).toEqual(cancelledAt);
    expect(await received(prefix)).toHaveLength(1);
    expect(h.sentFor(run.id)).toHaveLength(1);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, cancelled: 1 });
  });

  it("a running attempt that fails after its run was cancelled is not retried", async () => {
    const h = harness();
    const { url } = receiverUrl("status=503&delay_ms=300");
    const run = await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY });
    const inFlight = h.redeliver(h.lastSent(run.id));
    await runReaches(run.id, ["running"]);

    await cancel(h, run.id);
    await inFlight;

    expect((await mustStoredRun(run.id)).status).toBe("cancelled");
    expect(h.sentFor(run.id)).toHaveLength(1);
  });

  it.each([
    ["succeeded", "status=200"],
    ["failed", "status=404"],
  ])("cancelling a %s run answers 409 and changes nothing", async (status, query) => {
    const h = harness();
    const { url } = receiverUrl(query);
    const run = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(run.id));
    const finished = await mustStoredRun(run.id);
    expect(finished.status).toBe(status);
    const before = await taskStats();

    const res = await cancel(h, run.id);

    expect(res.status).toBe(409);
    expect((await res.json<ErrorBody>()).error.code).toBe("conflict");
    expect(await mustStoredRun(run.id)).toEqual(finished);
    expect(statsDelta(before, await taskStats())).toEqual(NO_CHANGE);
  });

  it("cancelling a cancelled run answers 409 and counts it once", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url }, delay: 3600 });
    const before = await taskStats();
    expect((await cancel(h, run.id)).status).toBe(200);
    expect((await cancel(h, run.id)).status).toBe(409);
    expect(statsDelta(before, await taskStats())).toEqual({ ...NO_CHANGE, cancelled: 1 });
  });

  it("cancelling an unknown run answers 404", async () => {
    const res = await cancel(harness(), "run_does_not_exist");
    expect(res.status).toBe(404);
    expect((await res.json<ErrorBody>()).error.code).toBe("not_found");
  });
});

describe("POST /v1/runs/:id/retry", () => {
  it("retrying a failed run creates a new run naming the old one, delivered under a new webhook-id", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl("status=404");
    const old = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(old.id));
    expect((await mustStoredRun(old.id)).status).toBe("failed");

    const res = await retry(h, old.id);

    expect(res.status).toBe(202);
    const fresh = await res.json<RunBody>();
    expect(fresh.id).not.toBe(old.id);
    const stored = await mustStoredRun(fresh.id);
    expect(stored).toMatchObject({ status: "queued", attempt: 0, retry_of: old.id });
    await h.redeliver(h.lastSent(fresh.id));
    const got = await received(prefix);
    expect(got.map((r) => r.headers["webhook-id"])).toEqual([old.id, fresh.id]);
    expect(await mustStoredRun(old.id)).toMatchObject({ status: "failed" });
  });

  it("retrying a dead run creates a new run that runs again", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=500&fail_times=1");
    const old = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    await h.redeliver(h.lastSent(old.id));
    expect((await mustStoredRun(old.id)).status).toBe("dead");

    const fresh = await (await retry(h, old.id)).json<RunBody>();
    await h.redeliver(h.lastSent(fresh.id));

    expect(await mustStoredRun(fresh.id)).toMatchObject({ status: "succeeded", attempt: 1, retry_of: old.id });
    expect(await received(prefix)).toHaveLength(2);
  });

  it("retrying a dead run again after its retry failed answers 202 with a new run, which runs", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=500");
    const old = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    await h.redeliver(h.lastSent(old.id));
    const first = await (await retry(h, old.id)).json<RunBody>();
    await h.redeliver(h.lastSent(first.id));
    expect((await mustStoredRun(first.id)).status).toBe("dead");

    const res = await retry(h, old.id);

    expect(res.status).toBe(202);
    const second = await res.json<RunBody>();
    expect(second.id).not.toBe(first.id);
    expect(second).toMatchObject({ status: "queued", retry_of: old.id });
    await h.redeliver(h.lastSent(second.id));
    expect(await mustStoredRun(second.id)).toMatchObject({ status: "dead", attempt: 1 });
    expect((await received(prefix)).map((r) => r.headers["webhook-id"])).toEqual([old.id, first.id, second.id]);
  });

  it("retrying a run again after its retry succeeded starts another run", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl("status=500&fail_times=1");
    const old = await h.enqueue({ target: { type: "http", url }, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    await h.redeliver(h.lastSent(old.id));
    const first = await (await retry(h, old.id)).json<RunBody>();
    await h.redeliver(h.lastSent(first.id));
    expect((await mustStoredRun(first.id)).status).toBe("succeeded");

    const second = await (await retry(h, old.id)).json<RunBody>();
    await h.redeliver(h.lastSent(second.id));

    expect(second.id).not.toBe(first.id);
    expect(await mustStoredRun(second.id)).toMatchObject({ status: "succeeded", retry_of: old.id });
    expect(await received(prefix)).toHaveLength(3);
  });

  it("retrying again while the retry is still queued returns that retry: a double click starts one run", async () => {
    const h = harness();
    const { url } = receiverUrl("status=404");
    const old = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(old.id));

    const first = await (await retry(h, old.id)).json<RunBody>();
    const again = await retry(h, old.id);

    expect(again.status).toBe(202);
    expect((await again.json<RunBody>()).id).toBe(first.id);
    expect(h.sentFor(first.id)).toHaveLength(1);
    expect((await runsOfOwnerOf(old.id)).filter((r) => r.retryOf === old.id)).toHaveLength(1);
  });

  it("concurrent retries of a run whose retry has finished start exactly one new run", async () => {
    const h = harness();
    const { url } = receiverUrl("status=404");
    const old = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(old.id));
    const first = await (await retry(h, old.id)).json<RunBody>();
    await h.redeliver(h.lastSent(first.id));

    const answers = await Promise.all(Array.from({ length: 5 }, () => retry(h, old.id)));

    expect(answers.map((r) => r.status)).toEqual(Array(5).fill(202));
    const ids = new Set(await Promise.all(answers.map(async (r) => (await r.json<RunBody>()).id)));
    expect(ids.size).toBe(1);
    expect(ids.has(first.id)).toBe(false);
    expect((await runsOfOwnerOf(old.id)).filter((r) => r.retryOf === old.id)).toHaveLength(2);
  });

  it("retrying a succeeded run answers 409 and creates nothing", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(run.id));

    const res = await retry(h, run.id);

    expect(res.status).toBe(409);
    expect((await runsOfOwnerOf(run.id)).filter((r) => r.retryOf === run.id)).toHaveLength(0);
  });

  it("retrying a queued run answers 409", async () => {
    const h = harness();
    const { url } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    expect((await retry(h, run.id)).status).toBe(409);
    expect(h.sent).toHaveLength(1);
  });

  it("retrying an unknown run answers 404", async () => {
    const res = await retry(harness(), "run_does_not_exist");
    expect(res.status).toBe(404);
    expect((await res.json<ErrorBody>()).error.code).toBe("not_found");
  });
});

describe("POST /v1/tasks with an Idempotency-Key", () => {
  it("ten concurrent requests with one key answer one run, stored once and sent once", async () => {
    const h = harness();
    const { url, prefix } = receiverUrl();
    const key = `idem-${crypto.randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        h.api("/v1/tasks", { method: "POST", json: { target: { type: "http", url } }, headers: { "idempotency-key": key } }),
      ),
    );

    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(202));
    const ids = await Promise.all(responses.map(async (r) => (await r.json<RunBody>()).id));
    expect(new Set(ids).size).toBe(1);
    expect(responses.filter((r) => r.headers.get("idempotent-replayed") === "true")).toHaveLength(9);
    expect((await tasksWithKey(key)).map((r) => r.id)).toEqual([ids[0]]);
    expect(h.sent).toHaveLength(1);
    for (const message of h.sent) await h.redeliver(message);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("ten concurrent requests with one key deliver the target once through the real queue", async () => {
    const { url, prefix } = receiverUrl();
    const key = `idem-${crypto.randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        api("/v1/tasks", { method: "POST", json: { target: { type: "http", url } }, headers: { "idempotency-key": key } }),
      ),
    );
    const ids = new Set(await Promise.all(responses.map(async (r) => (await r.json<RunBody>()).id)));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    if (id === undefined) throw new Error("no run id");

    expect(await runReaches(id, ["succeeded", "failed", "dead", "cancelled"])).toMatchObject({ status: "succeeded", attempt: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(await received(prefix)).toHaveLength(1);
  });
});
