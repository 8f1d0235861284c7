import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server";
import { percentile, type Receiver, startReceiver } from "./receiver";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("scheduled jobs under wrangler dev", () => {
  let server: DevServer;
  let receiver: Receiver;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" } });

  beforeAll(async () => {
    [server, receiver] = await Promise.all([startDevServer(), startReceiver()]);
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  const fires = () => receiver.deliveries.filter((d) => d.path === "/tick");

  it("an interval: 1s job fires in real time; pause stops it, resume restarts it, delete ends it", async () => {
    const created = await call("/v1/jobs", {
      method: "POST",
      body: JSON.stringify({
        id: "e2e-tick",
        trigger: { type: "interval", seconds: 1 },
        target: { type: "http", url: `${receiver.url}/tick` },
      }),
    });
    expect(created.status).toBe(201);
    await sleep(12_500);
    const firstRun = fires();
    expect(firstRun.length).toBeGreaterThanOrEqual(10);

    // Fire lag: receipt at the receiver minus the run's scheduled time.
    const lags: number[] = [];
    for (const delivery of firstRun) {
      const run = (await (await call(`/v1/runs/${delivery.webhookId}`)).json()) as { scheduled_for: string };
      lags.push(delivery.receivedAt - Date.parse(run.scheduled_for));
    }
    console.log(`interval 1s fire lag over ${lags.length} fires: p50 ${percentile(lags, 50)} ms, p99 ${percentile(lags, 99)} ms`);
    expect(percentile(lags, 50)).toBeLessThan(1_000);

    expect((await call("/v1/jobs/e2e-tick/pause", { method: "POST" })).status).toBe(200);
    await sleep(1_500); // a fire already in flight may still land
    const atPause = fires().length;
    await sleep(3_000);
    expect(fires().length).toBe(atPause);

    expect((await call("/v1/jobs/e2e-tick/resume", { method: "POST" })).status).toBe(200);
    await sleep(3_500);
    const afterResume = fires().length;
    expect(afterResume).toBeGreaterThanOrEqual(atPause + 2);

    expect((await call("/v1/jobs/e2e-tick", { method: "DELETE" })).status).toBe(204);
    await sleep(1_500);
    const atDelete = fires().length;
    await sleep(3_000);
    expect(fires().length).toBe(atDelete);
  }, 120_000);
});
