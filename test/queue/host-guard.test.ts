import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hasFreePass, noteFreePass } from "../../src/hosts/guard-client";
import { FREE_PASS_MS } from "../../src/hosts/host-guard";
import { countingGuards } from "../helpers/counting-guards";
import { api } from "../helpers/http";
import { eventually, received, receiverUrl } from "../helpers/receiver";
import { harness, MANUAL_RETRY, mustStoredRun, TASK_QUEUE } from "../helpers/runs";

interface RunBody {
  id: string;
  status: string;
  attempt: number;
  deferred_reason: string | null;
}
const run = async (id: string) => (await api(`/v1/runs/${id}`)).json<RunBody>();

describe("per-host guard: circuit breaker", () => {
  it("opens after N failures, defers the run without spending attempts, and closes after a successful probe", async () => {
    const target = receiverUrl("status=503&fail_times=3");
    const put = await api(`/v1/hosts/${target.host}`, { method: "PUT", json: { failure_threshold: 3, cooldown: 2 } });
    expect(put.status).toBe(200);
    const task = await (
      await api("/v1/tasks", {
        method: "POST",
        json: { target: { type: "http", url: target.url }, retry: { max_attempts: 10, backoff: 0, max_delay: 0 } },
      })
    ).json<RunBody>();
    const deferred = await eventually(
      async () => {
        const r = await run(task.id);
        return r.deferred_reason ? r : undefined;
      },
      10_000,
      "the run to be deferred",
    );
    expect(deferred.deferred_reason).toMatch(/circuit open/);
    expect(deferred.attempt).toBe(3);
    expect((await (await api(`/v1/hosts/${target.host}`)).json<{ circuit: string }>()).circuit).toBe("open");
    const metrics = await (await api("/metrics")).text();
    expect(metrics).toContain(`taskflare_host_circuit_open{host="${target.host}"} 1`);

    const done = await eventually(
      async () => {
        const r = await run(task.id);
        return r.status === "succeeded" ? r : undefined;
      },
      10_000,
      "the probe to succeed",
    );
    expect(done.attempt).toBe(4); // three failures and the probe: deferring spent nothing
    expect(done.deferred_reason).toBeNull();
    expect(await received(target.prefix)).toHaveLength(4);
    const host = await (await api(`/v1/hosts/${target.host}`)).json<{ circuit: string; consecutive_failures: number }>();
    expect(host).toMatchObject({ circuit: "closed", consecutive_failures: 0 });
  }, 20_000);
});

describe("per-host guard: free pass", () => {
  const enqueue = async (url: string, retry?: unknown) =>
    (
      await (
        await api("/v1/tasks", { method: "POST", json: { target: { type: "http", url }, ...(retry ? { retry } : {}) } })
      ).json<RunBody>()
    ).id;

  it("a host with a closed circuit and no caps may be called without asking its guard, until a policy with caps is set", async () => {
    const target = receiverUrl();
    const id = await enqueue(target.url);
    await eventually(async () => ((await run(id)).status === "succeeded" ? true : undefined), 10_000, "the run to succeed");
    expect(hasFreePass(target.host, Date.now())).toBe(true);

    expect(
      (await api(`/v1/hosts/${target.host}`, { method: "PUT", json: { failure_threshold: 5, cooldown: 30, max_concurrency: 1 } })).status,
    ).toBe(200);
    expect(hasFreePass(target.host, Date.now())).toBe(false);
    const capped = await enqueue(target.url);
    await eventually(async () => ((await run(capped)).status === "succeeded" ? true : undefined), 10_000, "the capped run to succeed");
    // The guard now has a cap to enforce, so it gives no pass.
    expect(hasFreePass(target.host, Date.now())).toBe(false);
  }, 20_000);

  it("the pass ends when the circuit opens", async () => {
    const target = receiverUrl("status=503&fail_times=10");
    expect((await api(`/v1/hosts/${target.host}`, { method: "PUT", json: { failure_threshold: 2, cooldown: 30 } })).status).toBe(200);
    const id = await enqueue(target.url, { max_attempts: 5, backoff: 0, max_delay: 0 });
    await eventually(async () => ((await run(id)).deferred_reason ? true : undefined), 10_000, "the circuit to open");
    expect(hasFreePass(target.host, Date.now())).toBe(false);
  }, 20_000);
});

describe("per-host guard: what it stores", () => {
  it("for a host with no cap, no rate limit and a closed circuit, an acquire and a healthy release store nothing before answering; a failure is stored", async () => {
    const host = `quiet-${Date.now()}.example.com`;
    const guard = env.HOST_GUARD.get(env.HOST_GUARD.idFromName(host));
    const stored = () => runInDurableObject(guard, async (_object, state) => state.storage.get<{ failures: number }>("state"));

    const [answer] = await guard.acquireMany(host, [{ runId: "run-1", holdMs: 60_000 }]);
    expect(answer?.allowed).toBe(true);
    expect(await guard.status()).toMatchObject({ host, in_flight: 1 });
    await guard.releaseMany([{ runId: "run-1", outcome: "healthy" }]);
    expect(await stored()).toBeUndefined();

    await guard.acquireMany(host, [{ runId: "run-2", holdMs: 60_000 }]);
    await guard.releaseMany([{ runId: "run-2", outcome: "failure" }]);
    expect(await stored()).toMatchObject({ failures: 1 });
    expect(await guard.status()).toMatchObject({ consecutive_failures: 1, in_flight: 0 });
  });

  it("with a cap, every acquire is stored: the runs in flight decide the next answer", async () => {
    const host = `capped-${Date.now()}.example.com`;
    const guard = env.HOST_GUARD.get(env.HOST_GUARD.idFromName(host));
    await guard.configure(host, { failure_threshold: 5, cooldown: 30, max_concurrency: 1 });

    const [first] = await guard.acquireMany(host, [{ runId: "run-1", holdMs: 60_000 }]);
    expect(first?.allowed).toBe(true);
    const inFlight = await runInDurableObject(
      guard,
      async (_object, state) => (await state.storage.get<{ inFlight: Record<string, number> }>("state"))?.inFlight,
    );
    expect(Object.keys(inFlight ?? {})).toEqual(["run-1"]);
    const [second] = await guard.acquireMany(host, [{ runId: "run-2", holdMs: 60_000 }]);
    expect(second).toMatchObject({ allowed: false, reason: "max_concurrency" });
  });
});

describe("per-host guard: a job introduces its host", () => {
  it("creating a job wakes the guard of the host it calls, so its first fire does not create it", async () => {
    const host = `introduced-${Date.now()}.example.com`;
    const id = `introduce-${Date.now()}`;
    const guard = env.HOST_GUARD.get(env.HOST_GUARD.idFromName(host));
    const created = await api(`/v1/jobs/${id}`, {
      method: "PUT",
      json: {
        trigger: { type: "interval", seconds: 3600, start_date: "2099-01-01T00:00:00Z" },
        target: { type: "http", url: `https://${host}/hook` },
      },
    });
    expect(created.status).toBe(201);

    // status() alone does not learn the name: only an introduction (or a call) does.
    await eventually(async () => ((await guard.status()).host === host ? true : undefined), 5_000, "the guard to know its host");
    expect((await api(`/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(204);
  });
});

describe("per-host guard: what a consumer batch reports", () => {
  /** Enqueues tasks calling `urls` and delivers their messages in one batch through the counting guards. */
  async function deliverBatch(urls: string[]) {
    const guards = countingGuards();
    const h = harness({ HOST_GUARD: guards.env.HOST_GUARD });
    const runs = [];
    for (const url of urls) runs.push(await h.enqueue({ target: { type: "http", url }, retry: MANUAL_RETRY }));
    await h.deliver(
      TASK_QUEUE,
      runs.map((r) => h.lastSent(r.id).body),
    );
    return { asks: guards.asks(), reports: guards.reports(), runs: await Promise.all(runs.map((r) => mustStoredRun(r.id))) };
  }

  it("healthy calls under a fresh free pass make no call to the guard at all", async () => {
    const target = receiverUrl();
    noteFreePass(target.host, Date.now() + FREE_PASS_MS);
    const batch = await deliverBatch([target.url, target.url, target.url]);
    expect(batch.runs.map((r) => r.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect({ asks: batch.asks, reports: batch.reports }).toEqual({ asks: 0, reports: 0 });
  });

  it("a failed call is reported, then the next healthy call (the guard's count resets), then nothing", async () => {
    const target = receiverUrl();
    const failing = `https://${target.host}${target.prefix}/hook?status=500`;
    noteFreePass(target.host, Date.now() + FREE_PASS_MS);
    expect((await deliverBatch([failing])).reports).toBe(1);
    expect((await deliverBatch([target.url])).reports).toBe(1);
    expect((await deliverBatch([target.url])).reports).toBe(0);
  });

  it("without a pass, one ask and one report per batch; a pass due for renewal brings one report", async () => {
    const target = receiverUrl();
    noteFreePass(target.host, null);
    expect(await deliverBatch([target.url, target.url])).toMatchObject({ asks: 1, reports: 1 });
    noteFreePass(target.host, Date.now() + FREE_PASS_MS / 2);
    expect(await deliverBatch([target.url, target.url])).toMatchObject({ asks: 0, reports: 1 });
    expect(hasFreePass(target.host, Date.now() + FREE_PASS_MS * 0.75)).toBe(true);
  });
});
