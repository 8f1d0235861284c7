import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server";
import { type Receiver, startReceiver } from "./receiver";

/**
 * A second Worker (examples/rpc-consumer, the one the README shows) bound to
 * Taskflare's TaskflareRPC entrypoint, both run by one `wrangler dev`.
 */
describe("service-binding RPC from another Worker", () => {
  let server: DevServer;
  let receiver: Receiver;
  const rpc = async <T>(method: string, ...args: unknown[]): Promise<{ ok: boolean; result: T; error?: string }> =>
    (await fetch(`${server.url}/rpc`, { method: "POST", body: JSON.stringify({ method, args }) })).json() as Promise<{
      ok: boolean;
      result: T;
      error?: string;
    }>;

  beforeAll(async () => {
    [server, receiver] = await Promise.all([
      startDevServer(["-c", "examples/rpc-consumer/wrangler.toml", "-c", "wrangler.toml"]),
      startReceiver(),
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  it("enqueues a task without HTTP or a token, and the executor runs it", async () => {
    const queued = await rpc<{ id: string; request_id: string }>("enqueue", {
      target: { type: "http", url: `${receiver.url}/from-rpc`, body: { via: "binding" } },
    });
    expect(queued.ok).toBe(true);
    expect(queued.result.request_id).toMatch(/^rpc-/);
    let status = "";
    for (let i = 0; i < 80 && status !== "succeeded"; i++) {
      status = (await rpc<{ status: string }>("getRun", queued.result.id)).result.status;
      if (status !== "succeeded") await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe("succeeded");
    const delivered = receiver.deliveries.filter((d) => d.path === "/from-rpc");
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.webhookId).toBe(queued.result.id);
    expect(JSON.parse(delivered[0]?.body ?? "{}")).toEqual({ via: "binding" });
  });

  it("validates with the API's schemas and manages jobs through the same code paths", async () => {
    expect((await rpc("enqueue", { target: { type: "handler", name: "nope" } })).error).toMatch(/^\[validation_failed\] Unknown handler/);
    const job = await rpc<{ id: string; next_run_times: unknown[] }>("createJob", {
      id: "rpc-made",
      trigger: { type: "cron", expression: "0 9 * * MON", timezone: "Europe/Paris" },
      target: { type: "handler", name: "cleanup-runs" },
    });
    expect(job.ok).toBe(true);
    expect(job.result.next_run_times).toHaveLength(5);
    expect(
      (
        await rpc("createJob", {
          id: "rpc-made",
          trigger: { type: "cron", expression: "0 9 * * *" },
          target: { type: "handler", name: "cleanup-runs" },
        })
      ).error,
    ).toMatch(/^\[conflict\]/);
    expect((await rpc<{ state: string }>("pauseJob", "rpc-made")).result.state).toBe("paused");
    expect((await rpc("deleteJob", "rpc-made")).ok).toBe(true);
    expect((await rpc("getJob", "rpc-made")).error).toMatch(/^\[not_found\]/);
  });
});
