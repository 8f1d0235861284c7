import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server";
import { type Receiver, startReceiver } from "./receiver";

interface Run {
  id: string;
  status: string;
  finished_at: string | null;
}

describe("background tasks under wrangler dev", () => {
  let server: DevServer;
  let receiver: Receiver;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json", ...(init.headers ?? {}) },
    });

  beforeAll(async () => {
    [server, receiver] = await Promise.all([startDevServer(), startReceiver()]);
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  async function waitForRuns(ids: string[], timeoutMs: number): Promise<Map<string, Run>> {
    const deadline = Date.now() + timeoutMs;
    const done = new Map<string, Run>();
    while (done.size < ids.length && Date.now() < deadline) {
      const page = await (await call(`/v1/runs?status=succeeded&limit=200`)).json();
      for (const run of (page as { items: Run[] }).items) if (ids.includes(run.id)) done.set(run.id, run);
      if (done.size < ids.length) await new Promise((r) => setTimeout(r, 250));
    }
    return done;
  }

  it("delivers 100 tasks to a local receiver exactly once each, and every run succeeds", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await call("/v1/tasks", {
        method: "POST",
        body: JSON.stringify({ target: { type: "http", url: `${receiver.url}/hook/${i}`, body: { i } } }),
      });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as Run).id);
    }
    const done = await waitForRuns(ids, 60_000);
    expect(done.size).toBe(100);
    const hooks = receiver.deliveries.filter((d) => d.path.startsWith("/hook/"));
    const byWebhookId = new Map<string, number>();
    for (const d of hooks) byWebhookId.set(d.webhookId ?? "", (byWebhookId.get(d.webhookId ?? "") ?? 0) + 1);
    expect(hooks).toHaveLength(100);
    expect([...byWebhookId.keys()].sort()).toEqual([...ids].sort());
    expect([...byWebhookId.values()].every((n) => n === 1)).toBe(true);
  });

  it("a high-priority task enqueued behind 2,000 default ones finishes before a tenth of them have", async () => {
    // Every task is due at the same instant, so the default queue holds a real backlog when they all arrive.
    const dueAt = new Date(Date.now() + 8_000).toISOString();
    const task = (priority: string, path: string) => ({
      target: { type: "http", url: `${receiver.url}${path}?delay_ms=100` },
      run_at: dueAt,
      priority,
    });
    const defaults: string[] = [];
    for (let i = 0; i < 2000; i += 100) {
      const tasks = Array.from({ length: 100 }, (_, k) => task("default", `/flood/${i + k}`));
      const res = await call("/v1/tasks/batch", { method: "POST", body: JSON.stringify({ tasks }) });
      const { items } = (await res.json()) as { items: { status: number; run: Run }[] };
      expect(items.every((item) => item.status === 202)).toBe(true);
      defaults.push(...items.map((item) => item.run.id));
    }
    const highRes = await call("/v1/tasks", { method: "POST", body: JSON.stringify(task("high", "/urgent")) });
    const high = ((await highRes.json()) as Run).id;
    expect(Date.now()).toBeLessThan(Date.parse(dueAt)); // the whole flood was queued before any of it was due
    const urgent = (await waitForRuns([high], 60_000)).get(high);
    expect(urgent?.status).toBe("succeeded");
    const highDone = Date.parse(urgent?.finished_at ?? "");
    const floodDoneBefore = receiver.deliveries.filter((d) => d.path.startsWith("/flood/") && d.receivedAt + 100 <= highDone).length;
    console.log(`high-priority task finished after ${floodDoneBefore} of ${defaults.length} default tasks had`);
    expect(floodDoneBefore).toBeLessThan(200);
  }, 180_000);
});
