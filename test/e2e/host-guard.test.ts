import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server";
import { type Receiver, startReceiver } from "./receiver";

// Under wrangler dev, as deployed: one Worker, one queue. (Inside the workerd test pool every
// test file's Worker shares the local queues, so a long burst there can be consumed by another file.)
describe("per-host rate limit under wrangler dev", () => {
  let server: DevServer;
  let limited: Receiver;
  let free: Receiver;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" } });

  beforeAll(async () => {
    [server, limited, free] = await Promise.all([startDevServer(), startReceiver(), startReceiver()]);
  });
  afterAll(async () => {
    await server?.stop();
    await Promise.all([limited?.close(), free?.close()]);
  });

  it("holds a burst of 200 tasks to one host to its rate, while another host is unaffected", async () => {
    const host = new URL(limited.url).host;
    expect(
      (await call(`/v1/hosts/${host}`, { method: "PUT", body: JSON.stringify({ rate_limit: { requests: 40, period: 1 } }) })).status,
    ).toBe(200);
    const batch = (url: string, n: number) => ({ tasks: Array.from({ length: n }, () => ({ target: { type: "http", url } })) });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await call("/v1/tasks/batch", { method: "POST", body: JSON.stringify(batch(`${limited.url}/burst`, 100)) });
      expect(res.status).toBe(200);
      ids.push(...((await res.json()) as { items: { run: { id: string } }[] }).items.map((i) => i.run.id));
    }
    // The other host is named differently (localhost, not 127.0.0.1), so it has its own guard.
    const freeUrl = free.url.replace("127.0.0.1", "localhost");
    await call("/v1/tasks/batch", { method: "POST", body: JSON.stringify(batch(`${freeUrl}/other`, 20)) });
    const deadline = Date.now() + 90_000;
    while (free.deliveries.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(free.deliveries).toHaveLength(20);
    expect(limited.deliveries.length).toBeLessThan(200); // the other host did not wait for the burst
    while (limited.deliveries.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (limited.deliveries.length < 200) {
      const got = new Set(limited.deliveries.map((d) => d.webhookId));
      for (const id of ids.filter((x) => !got.has(x)).slice(0, 5)) console.log(JSON.stringify(await (await call(`/v1/runs/${id}`)).json()));
    }
    expect(limited.deliveries).toHaveLength(200);
    const times = limited.deliveries.map((d) => d.receivedAt).sort((a, b) => a - b);
    let worst = 0;
    for (const start of times) worst = Math.max(worst, times.filter((t) => t >= start && t < start + 1000).length);
    console.log(`rate limit 40/s: 200 calls over ${(times[199] ?? 0) - (times[0] ?? 0)} ms, busiest second ${worst}`);
    expect(worst).toBeLessThanOrEqual(44); // a little slack for delivery jitter between the guard and the receiver
    expect((times[199] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(3500);
    const metrics = await (await call("/metrics")).text();
    expect(metrics).toMatch(
      new RegExp(`taskflare_host_deferrals_total\\{host="${host.replace(/\./g, "\\.")}",reason="rate_limit"\\} [1-9]`),
    );
  }, 120_000);
});
