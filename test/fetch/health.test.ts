import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { runScheduled } from "../helpers/entry";
import { call } from "../helpers/http";

interface HealthBody {
  status: string;
  checks: Record<string, { status: string; observedValue?: unknown; observedUnit?: string; time: string; output?: string }[]>;
}

describe("GET and HEAD /healthz", () => {
  it("answers 200 without auth", async () => {
    const res = await call("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "pass" });
  });

  it("answers HEAD with 200 and no body", async () => {
    const res = await call("/healthz", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("touches no dependency: it passes even when D1 is unreachable", async () => {
    const broken = { ...env, DB: brokenD1() };
    const res = await worker.fetch(new Request("https://t/healthz"), broken, createExecutionContext());
    expect(res.status).toBe(200);
  });
});

describe("GET /readyz", () => {
  it("reports every dependency in the health+json format", async () => {
    await tick(Date.now());
    const res = await call("/readyz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/health+json");
    const body = await res.json<HealthBody>();
    expect(body.status).toBe("pass");
    expect(Object.keys(body.checks).sort()).toEqual([
      "configuration:apiToken",
      "d1:responseTime",
      "d1:write",
      "durableObject:responseTime",
      "jobs:successDeadlines",
      "queue:binding",
      "scheduler:heartbeat",
    ]);
    const d1 = body.checks["d1:responseTime"]?.[0];
    expect(d1?.status).toBe("pass");
    expect(d1?.observedUnit).toBe("ms");
    expect(typeof d1?.observedValue).toBe("number");
    expect(Number.isNaN(Date.parse(d1?.time ?? ""))).toBe(false);
  });

  it("turns a failing D1 into 503 with status fail", async () => {
    const broken = { ...env, DB: brokenD1() };
    const res = await worker.fetch(new Request("https://t/readyz"), broken, createExecutionContext());
    expect(res.status).toBe(503);
    const body = await res.json<HealthBody>();
    expect(body.status).toBe("fail");
    expect(body.checks["d1:responseTime"]?.[0]?.status).toBe("fail");
    expect(body.checks["d1:responseTime"]?.[0]?.output).toContain("D1 is down");
  });

  it("does not hang when D1 hangs: the check times out and fails", async () => {
    const hanging = { ...env, DB: hangingD1() };
    const started = Date.now();
    const res = await worker.fetch(new Request("https://t/readyz"), hanging, createExecutionContext());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.status).toBe(503);
    const body = await res.json<HealthBody>();
    expect(body.checks["d1:responseTime"]?.[0]?.output).toMatch(/timed out/);
  });

  it("fails when no API token is configured outside local development", async () => {
    const unconfigured = { ...env, API_TOKEN: undefined };
    const res = await worker.fetch(new Request("https://t/readyz"), unconfigured, createExecutionContext());
    expect(res.status).toBe(503);
    const body = await res.json<HealthBody>();
    expect(body.checks["configuration:apiToken"]?.[0]?.output).toMatch(/API_TOKEN/);
  });

  it("warns, without failing, when the heartbeat has not ticked for over 3 minutes", async () => {
    await tick(Date.now());
    const later = Date.now() + 4 * 60_000;
    const { readinessChecks } = await import("../../src/health/probes");
    const { runHealthChecks } = await import("../../src/health/runner");
    const report = await runHealthChecks(readinessChecks(env, () => later));
    expect(report.status).toBe("warn");
    expect(report.checks["scheduler:heartbeat"]?.[0]?.status).toBe("warn");
  });

  it("reads the heartbeat the scheduled entry point recorded", async () => {
    await tick(Date.now());
    const res = await call("/readyz");
    const body = await res.json<HealthBody>();
    const heartbeat = body.checks["scheduler:heartbeat"]?.[0];
    expect(heartbeat?.status).toBe("pass");
    expect(heartbeat?.observedUnit).toBe("s");
    expect(heartbeat?.observedValue).toBeLessThan(5);
  });
});

const tick = (scheduledTime: number) => runScheduled(scheduledTime);

function brokenD1(): D1Database {
  return {
    prepare: () => {
      throw new Error("D1 is down");
    },
  } as unknown as D1Database;
}

function hangingD1(): D1Database {
  const never = new Promise<never>(() => {});
  return { prepare: () => ({ first: () => never, bind: () => ({ first: () => never }) }) } as unknown as D1Database;
}
