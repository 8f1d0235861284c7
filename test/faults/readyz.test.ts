import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { WRITE_PROBE_INTERVAL_MS } from "../../src/health/probes";
import worker from "../../src/index";
import { faultyD1, write } from "../helpers/faults";

// Invariant: /readyz says whether the service can do its work. D1 may answer
// reads while it refuses every write, and then no job can be created or
// changed, no schedule recorded, and no statistics or failures reach D1 (task
// runs themselves live in their shards): readiness must fail.

interface HealthBody {
  status: string;
  checks: Record<string, { status: string; output?: string; observedValue?: unknown }[]>;
}

async function readyz(bindings: Partial<Env>): Promise<{ status: number; body: HealthBody }> {
  const res = await worker.fetch(new Request("https://t/readyz"), { ...env, ...bindings }, createExecutionContext());
  return { status: res.status, body: await res.json<HealthBody>() };
}

describe("faults: /readyz while D1 refuses writes", () => {
  it("D1 answers reads but refuses every write: /readyz answers 503, its write check fails and its read check still passes", async () => {
    const d1 = faultyD1();
    d1.down({ match: write });

    const { status, body } = await readyz({ DB: d1.db });

    expect(status).toBe(503);
    expect(body.status).toBe("fail");
    expect(body.checks["d1:responseTime"]?.[0]?.status).toBe("pass");
    expect(body.checks["d1:write"]?.[0]).toMatchObject({ status: "fail", output: expect.stringContaining("refused a write") });
  });

  it("the write probe upserts one scheduler_state row and passes when D1 takes writes", async () => {
    const d1 = faultyD1();

    const { status, body } = await readyz({ DB: d1.db });

    expect(status).toBe(200);
    expect(body.checks["d1:write"]?.[0]).toMatchObject({ status: "pass", observedUnit: "ms" });
    const row = await env.DB.prepare("SELECT value FROM scheduler_state WHERE key = 'readyz_probe'").first<{ value: string }>();
    expect(Number(row?.value)).toBeGreaterThan(Date.now() - 60_000);
  });

  it(`a monitor hammering /readyz costs one write per ${WRITE_PROBE_INTERVAL_MS / 1000} s per isolate, and a refused write is still reported`, async () => {
    const d1 = faultyD1();
    const probeWrites = () => d1.calls.filter((sqls) => sqls.some((sql) => sql.startsWith("INSERT INTO scheduler_state"))).length;

    for (let i = 0; i < 5; i++) expect((await readyz({ DB: d1.db })).status).toBe(200);
    expect(probeWrites()).toBe(1);

    const refusing = faultyD1();
    refusing.down({ match: write });
    for (let i = 0; i < 3; i++) expect((await readyz({ DB: refusing.db })).body.checks["d1:write"]?.[0]?.status).toBe("fail");
  });
});
