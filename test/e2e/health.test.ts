import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "./dev-server";

describe("wrangler dev started by `npm run dev`", () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("answers GET /healthz with 200", async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "pass" });
  });

  it("answers HEAD /healthz with 200", async () => {
    const res = await fetch(`${server.url}/healthz`, { method: "HEAD" });
    expect(res.status).toBe(200);
  });

  it("is ready once the local ticker has driven the heartbeat", async () => {
    let body: { status: string; checks: Record<string, { status: string }[]> } | undefined;
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${server.url}/readyz`);
      body = await res.json();
      if (body?.checks["scheduler:heartbeat"]?.[0]?.status === "pass") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(body?.status).toBe("pass");
  });

  it("serves /v1 with the token from .dev.vars", async () => {
    const res = await fetch(`${server.url}/v1/scheduler`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(res.status).toBe(200);
  });
});
