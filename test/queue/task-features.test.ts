import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { newTaskRunId } from "../../src/ids";
import { taskShard } from "../../src/tasks/shards";
import { api } from "../helpers/http";
import { flushStats, taskRunsWhere } from "../helpers/owners";
import { eventually, received, receiverUrl } from "../helpers/receiver";
import { harness } from "../helpers/runs";

interface RunBody {
  id: string;
  status: string;
  attempt: number;
  parent_run_id: string | null;
  error: unknown;
}

const enqueue = async (body: unknown) => (await api("/v1/tasks", { method: "POST", json: body })).json<RunBody>();
const run = async (id: string) => (await api(`/v1/runs/${id}`)).json<RunBody>();
const settled = (id: string) =>
  eventually(
    async () => {
      const r = await run(id);
      return ["succeeded", "failed", "dead", "cancelled", "expired"].includes(r.status) ? r : undefined;
    },
    10_000,
    `run ${id} to finish`,
  );

describe("callbacks", () => {
  it("calls `callback` with the finished run when the task succeeds, as a run of its own", async () => {
    const target = receiverUrl();
    const hook = receiverUrl();
    const task = await enqueue({ target: { type: "http", url: target.url }, callback: { type: "http", url: hook.url } });
    await settled(task.id);
    const [delivery] = await eventually(
      async () => {
        const got = await received(hook.prefix);
        return got.length > 0 ? got : undefined;
      },
      10_000,
      "the callback",
    );
    const body = JSON.parse(delivery?.body ?? "{}") as { event: string; run: { id: string; status: string } };
    expect(body.event).toBe("run.succeeded");
    expect(body.run).toMatchObject({ id: task.id, status: "succeeded" });
    const callbacks = await taskRunsWhere((r) => r.parentRunId === task.id);
    expect(callbacks).toHaveLength(1);
    expect((await run(callbacks[0]?.id ?? "")).parent_run_id).toBe(task.id);
  });

  it("calls `failure_callback` (not `callback`) when the task ends dead", async () => {
    const target = receiverUrl("status=500");
    const ok = receiverUrl();
    const bad = receiverUrl();
    const task = await enqueue({
      target: { type: "http", url: target.url },
      retry: { max_attempts: 2, backoff: 0, max_delay: 0 },
      callback: { type: "http", url: ok.url },
      failure_callback: { type: "http", url: bad.url },
    });
    expect((await settled(task.id)).status).toBe("dead");
    const got = await eventually(
      async () => {
        const r = await received(bad.prefix);
        return r.length > 0 ? r : undefined;
      },
      10_000,
      "the failure callback",
    );
    expect(JSON.parse(got[0]?.body ?? "{}").event).toBe("run.dead");
    expect(await received(ok.prefix)).toHaveLength(0);
  });

  it("refuses a callback aimed at a private address with 400", async () => {
    const res = await api("/v1/tasks", {
      method: "POST",
      json: { target: { type: "http", url: receiverUrl().url }, callback: { type: "http", url: "http://10.0.0.1/" } },
    });
    expect(res.status).toBe(400);
  });
});

describe("task expiry", () => {
  it("a task not started by expires_at ends `expired`, never runs, and is counted expired once", async () => {
    const target = receiverUrl();
    // Owners add their ended runs to the statistics in batches: flush them before each reading.
    const expired = async () => {
      await flushStats();
      const row = await env.DB.prepare("SELECT coalesce(sum(expired), 0) AS n FROM job_stats WHERE job_id = ''").first<{ n: number }>();
      return row?.n ?? 0;
    };
    const before = await expired();
    const now = Date.now();
    const task = await enqueue({
      target: { type: "http", url: target.url },
      run_at: new Date(now + 1_500).toISOString(),
      expires_at: new Date(now + 500).toISOString(),
    });
    const done = await settled(task.id);
    expect(done.status).toBe("expired");
    expect(await received(target.prefix)).toHaveLength(0);
    expect((await expired()) - before).toBe(1);
    expect((await expired()) - before).toBe(1);
  });
});

describe("GET /v1/runs/:id/attempts", () => {
  it("lists every attempt with its start, end, outcome, status code and error", async () => {
    const target = receiverUrl("status=503&fail_times=2");
    const task = await enqueue({ target: { type: "http", url: target.url }, retry: { max_attempts: 5, backoff: 0, max_delay: 0 } });
    expect((await settled(task.id)).status).toBe("succeeded");
    const res = await api(`/v1/runs/${task.id}/attempts`);
    expect(res.status).toBe(200);
    const { items } = await res.json<{
      items: {
        attempt: number;
        outcome: string;
        status_code: number | null;
        error: string | null;
        started_at: string;
        finished_at: string;
      }[];
    }>();
    expect(items.map((a) => [a.attempt, a.outcome, a.status_code])).toEqual([
      [1, "retrying", 503],
      [2, "retrying", 503],
      [3, "succeeded", 200],
    ]);
    expect(items[0]?.error).toContain("503");
    expect(items[2]?.error).toBeNull();
    for (const a of items) expect(Date.parse(a.finished_at)).toBeGreaterThanOrEqual(Date.parse(a.started_at));
  });
});

describe("POST /v1/tasks/batch", () => {
  it("validates each task on its own and answers one item per task, in order", async () => {
    const good = receiverUrl();
    const res = await api("/v1/tasks/batch", {
      method: "POST",
      json: {
        tasks: [
          { target: { type: "http", url: good.url } },
          { target: { type: "http", url: "http://127.0.0.1/" } },
          { target: { type: "handler", name: "nope" } },
          { delay: 5 },
          { target: { type: "http", url: good.url }, idempotency_key: `batch-${Date.now()}` },
        ],
      },
    });
    expect(res.status).toBe(200);
    const { items } = await res.json<{ items: { index: number; status: number; run?: { id: string }; error?: { code: string } }[] }>();
    expect(items.map((i) => [i.index, i.status])).toEqual([
      [0, 202],
      [1, 400],
      [2, 400],
      [3, 400],
      [4, 202],
    ]);
    expect(items[2]?.error?.code).toBe("validation_failed");
    await eventually(async () => (await received(good.prefix)).length === 2, 10_000, "both valid tasks to run");
  });

  it("refuses more than 100 tasks, or none, as a whole", async () => {
    const many = Array.from({ length: 101 }, () => ({ target: { type: "http", url: "https://example.com/" } }));
    expect((await api("/v1/tasks/batch", { method: "POST", json: { tasks: many } })).status).toBe(400);
    expect((await api("/v1/tasks/batch", { method: "POST", json: { tasks: [] } })).status).toBe(400);
  });
});

describe("POST /v1/tasks/batch: what it answers is what is stored", () => {
  it("each created task's run is the stored run, field for field (due now, due later, and a replayed key)", async () => {
    const h = harness();
    const key = `answered-${crypto.randomUUID()}`;
    const tasks = [
      { target: { type: "http", url: "https://example.com/now" }, retry: { max_attempts: 2 } },
      { target: { type: "http", url: "https://example.com/later" }, delay: 3600, priority: "high" },
      { target: { type: "http", url: "https://example.com/keyed" }, idempotency_key: key },
    ];
    const first = await (await h.api("/v1/tasks/batch", { method: "POST", json: { tasks } })).json<{ items: { run: { id: string } }[] }>();
    const again = await (await h.api("/v1/tasks/batch", { method: "POST", json: { tasks: [tasks[2]] } })).json<{
      items: { run: { id: string } }[];
    }>();
    for (const item of [...first.items, ...again.items]) {
      const stored = await (await h.api(`/v1/runs/${item.run.id}`)).json();
      expect(item.run).toEqual(stored);
    }
    expect(again.items[0]?.run.id).toBe(first.items[2]?.run.id);
  });

  it("a caller that gives no creation time (a Worker of the version before) gets every run back from its shard", async () => {
    const now = Date.now();
    const id = newTaskRunId(3, now);
    const spec = {
      id,
      target: { type: "http" as const, method: "POST" as const, url: "https://example.com/" },
      dueAt: now,
      priority: "default" as const,
      retry: undefined,
      timeoutSeconds: 30,
      requestId: null,
    };
    const stub = taskShard(env as Env, 3);
    const [old] = (await stub.createRuns("3", [spec])) as unknown as { run: { id: string }; created: boolean }[];
    expect(old).toMatchObject({ created: true, run: { id } });
    const [replayed] = (await stub.createRuns("3", [spec], now)) as unknown as { run: { id: string }; created: boolean }[];
    expect(replayed).toMatchObject({ created: false, run: { id } });
  });
});
