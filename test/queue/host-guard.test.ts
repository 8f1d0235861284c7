import { describe, expect, it } from "vitest";
import { api } from "../helpers/http";
import { eventually, received, receiverUrl } from "../helpers/receiver";

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
    const task = await (await api("/v1/tasks", { method: "POST", json: { target: { type: "http", url: target.url }, retry: { max_attempts: 10, backoff: 0, max_delay: 0 } } })).json<RunBody>();
    const deferred = await eventually(async () => {
      const r = await run(task.id);
      return r.deferred_reason ? r : undefined;
    }, 10_000, "the run to be deferred");
    expect(deferred.deferred_reason).toMatch(/circuit open/);
    expect(deferred.attempt).toBe(3);
    expect((await (await api(`/v1/hosts/${target.host}`)).json<{ circuit: string }>()).circuit).toBe("open");
    const metrics = await (await api("/metrics")).text();
    expect(metrics).toContain(`taskflare_host_circuit_open{host="${target.host}"} 1`);

    const done = await eventually(async () => {
      const r = await run(task.id);
      return r.status === "succeeded" ? r : undefined;
    }, 10_000, "the probe to succeed");
    expect(done.attempt).toBe(4); // three failures and the probe: deferring spent nothing
    expect(done.deferred_reason).toBeNull();
    expect(await received(target.prefix)).toHaveLength(4);
    const host = await (await api(`/v1/hosts/${target.host}`)).json<{ circuit: string; consecutive_failures: number }>();
    expect(host).toMatchObject({ circuit: "closed", consecutive_failures: 0 });
  }, 20_000);
});

describe("per-host guard: rate limit", () => {
  it("holds a burst of 200 tasks to one host to its rate, while another host is unaffected", async () => {
    const limited = receiverUrl();
    const free = receiverUrl();
    await api(`/v1/hosts/${limited.host}`, { method: "PUT", json: { rate_limit: { requests: 40, period: 1 } } });
    const batch = (url: string, n: number) => Array.from({ length: n }, () => ({ target: { type: "http", url } }));
    for (let i = 0; i < 2; i++) {
      const res = await api("/v1/tasks/batch", { method: "POST", json: { tasks: batch(limited.url, 100) } });
      expect(res.status).toBe(200);
    }
    await api("/v1/tasks/batch", { method: "POST", json: { tasks: batch(free.url, 20) } });
    const freeDone = await eventually(async () => {
      const got = await received(free.prefix);
      return got.length === 20 ? got : undefined;
    }, 10_000, "the other host's tasks");
    const limitedSoFar = (await received(limited.prefix)).length;
    expect(limitedSoFar).toBeLessThan(200); // the other host did not wait for the burst
    const all = await eventually(async () => {
      const got = await received(limited.prefix);
      return got.length === 200 ? got : undefined;
    }, 60_000, "all 200 rate-limited tasks");
    const times = all.map((r) => r.at).sort((a, b) => a - b);
    // No one-second window saw more than the limit (a little slack for delivery jitter).
    let worst = 0;
    for (let i = 0; i < times.length; i++) worst = Math.max(worst, times.filter((t) => t >= (times[i] ?? 0) && t < (times[i] ?? 0) + 1000).length);
    expect(worst).toBeLessThanOrEqual(44);
    expect((times[times.length - 1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(3500);
    expect(freeDone).toHaveLength(20);
    const metrics = await (await api("/metrics")).text();
    expect(metrics).toMatch(new RegExp(`taskflare_host_deferrals_total\\{host="${limited.host.replace(/\./g, "\\.")}",reason="rate_limit"\\} [1-9]`));
  }, 90_000);
});
