import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { jobRunPrefix } from "../../src/ids";
import { RunLedger } from "../../src/ledger/run-ledger";
import { RunOwner } from "../../src/ledger/run-owner";
import { newRunRow } from "../../src/runs/new-run";
import type { RunRow } from "../../src/runs/store";

/** Runs `body` against a fresh ledger in a Durable Object of its own (a throwaway shard name). */
function withLedger<T>(name: string, body: (ledger: RunLedger, sql: SqlStorage) => T): Promise<T> {
  const stub = env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`ledger-test:${name}`));
  return runInDurableObject(stub, (_instance, state) => body(new RunLedger(state.storage.sql), state.storage.sql));
}

const NOW = Date.UTC(2026, 11, 7, 3, 0, 0);
const target = { type: "http" as const, method: "POST" as const, url: "https://example.com/hook" };

function smallTask(n: number): RunRow {
  const run = newRunRow(
    { target, dueAt: NOW, priority: "default", retry: undefined, timeoutSeconds: 30, requestId: crypto.randomUUID() },
    `tsk003_01m9${String(n).padStart(22, "0")}`,
    NOW,
  );
  return {
    ...run,
    status: "succeeded",
    attempt: 1,
    startedAt: NOW,
    finishedAt: NOW + 250,
    durationMs: 250,
    attempts: [
      {
        attempt: 1,
        started_at: new Date(NOW).toISOString(),
        finished_at: new Date(NOW + 250).toISOString(),
        duration_ms: 250,
        outcome: "succeeded",
        status_code: 200,
        error: null,
      },
    ],
    result: { status: 200, body: "ok", content_type: "text/plain" },
  } as RunRow;
}

describe("run ledger storage", () => {
  it("reads back every field of a run as written, empty fields and a false flag included", async () => {
    const empty = smallTask(1);
    const full: RunRow = {
      ...smallTask(2),
      jobId: "nightly",
      fireSlot: NOW,
      jobVersion: 4,
      idempotencyKey: "order-17",
      retryOf: "tsk003_01m90000000000000000000000",
      cancelRequested: true,
      expiresAt: NOW + 60_000,
      callback: target,
      failureCallback: target,
      parentRunId: "tsk003_01m90000000000000000000001",
      deferredReason: "host_rate_limited",
      leaseExpiresAt: NOW + 90_000,
      error: { message: "boom" },
    } as RunRow;
    const [readEmpty, readFull] = await withLedger("round-trip", (ledger) => {
      ledger.insert(empty);
      ledger.insert(full);
      return [ledger.get(empty.id), ledger.get(full.id)];
    });
    expect(readEmpty).toEqual(empty);
    expect(readFull).toEqual(full);
    expect(Object.keys(readEmpty ?? {}).sort()).toEqual(Object.keys(empty).sort());
  });

  it("a run whose id is taken (a call tried again) writes nothing and answers the run that holds the id", async () => {
    const first = smallTask(3);
    const again = { ...smallTask(3), requestId: "another-request" };
    const { written, answer, stored, rows } = await withLedger("taken-id", (ledger, sql) => {
      const written = ledger.insert(first);
      const answer = ledger.insert(again);
      const rows = sql.exec<{ n: number }>("SELECT count(*) AS n FROM runs").one().n;
      return { written, answer, stored: ledger.get(first.id), rows };
    });
    expect(written).toEqual({ run: first, created: true });
    expect(answer).toEqual({ run: first, created: false });
    expect(stored).toEqual(first);
    expect(rows).toBe(1);
  });

  it("keeps a small finished task in its row: no overflow page (about 1,000 bytes is SQLite's limit)", async () => {
    const { longest, pagesPerRun } = await withLedger("small-rows", (ledger, sql) => {
      const before = sql.databaseSize;
      for (let n = 0; n < 200; n++) ledger.insert(smallTask(n));
      const grown = sql.databaseSize - before;
      const longest = sql.exec<{ n: number }>("SELECT max(length(id) + length(status) + 8 + length(body)) AS n FROM runs").one().n;
      return { longest, pagesPerRun: grown / 4096 / 200 };
    });
    expect(longest).toBeLessThan(1000);
    // A row past the limit takes a 4 KiB overflow page of its own: more than one page per run.
    expect(pagesPerRun).toBeLessThan(0.35);
  });
});

describe("an owner's changes", () => {
  it("a claim and a result, decided on the owner's pending copy of the run, store what a fresh read returns", async () => {
    const stub = env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`ledger-test:changes-${crypto.randomUUID()}`));
    const { finished, stored, reread } = await runInDurableObject(stub, async (_instance, state) => {
      const owner = new RunOwner(state.storage, () => env, "tsk003_", { finished: async () => {} }, { statsId: "", ownerId: "test" });
      const run = newRunRow(
        { target, dueAt: NOW, priority: "default", retry: undefined, timeoutSeconds: 30, requestId: null },
        `tsk003_01m9${"7".repeat(22)}`,
        NOW,
      );
      owner.insert(run);
      const [claimed] = owner.claimMany([{ id: run.id, attempt: 1, now: NOW }]);
      const [finished] = await owner.finishMany([
        { id: run.id, attempt: claimed?.attempt ?? 0, outcome: { status: "succeeded", result: { status: 200 } }, now: NOW + 40 },
      ]);
      // A second owner reads from storage only, as one woken afresh would.
      const reread = new RunOwner(state.storage, () => env, "tsk003_", { finished: async () => {} }, { statsId: "", ownerId: "test" }).get(
        run.id,
      );
      return { finished, stored: owner.get(run.id), reread };
    });
    expect(finished).toMatchObject({ status: "succeeded", attempt: 1, durationMs: 40 });
    expect(stored).toEqual(finished);
    expect(reread).toEqual(finished);
  });
});

describe("an owner's batched writes (one statement for a call's runs)", () => {
  const newTask = (n: number, key: string | null = null) => ({
    ...newRunRow(
      { target, dueAt: NOW, priority: "default", retry: undefined, timeoutSeconds: 30, requestId: null },
      `tsk003_01m8${String(n).padStart(22, "0")}`,
      NOW,
    ),
    idempotencyKey: key,
  });
  const withOwner = <T>(body: (owner: RunOwner, fresh: () => RunOwner) => T | Promise<T>) => {
    const stub = env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`ledger-test:batched-${crypto.randomUUID()}`));
    return runInDurableObject(stub, async (_instance, state) => {
      const make = () => new RunOwner(state.storage, () => env, "tsk003_", { finished: async () => {} }, { statsId: "", ownerId: "test" });
      return body(make(), make);
    });
  };

  it("insertMany writes the free ids together, answers a taken id, a repeated id and a held key with the run that holds them", async () => {
    const result = await withOwner((owner, fresh) => {
      owner.insert(newTask(1));
      owner.insert(newTask(2, "key-a"));
      const answers = owner.insertMany([newTask(1), newTask(3), newTask(3), newTask(4, "key-a"), newTask(5, "key-b"), newTask(6)]);
      const reread = fresh();
      return {
        answers: answers.map((a) => ("run" in a ? [a.run.id.slice(-2), a.created] : ["error"])),
        stored: [1, 2, 3, 5, 6].map((n) => reread.get(newTask(n).id)?.status),
        absent: reread.get(newTask(4).id),
        pending: [...owner.pending.keys()].map((id) => id.slice(-2)).sort(),
      };
    });
    expect(result.answers).toEqual([
      ["01", false],
      ["03", true],
      ["03", false],
      ["02", false],
      ["05", true],
      ["06", true],
    ]);
    expect(result.stored).toEqual(["queued", "queued", "queued", "queued", "queued"]);
    expect(result.absent).toBeUndefined();
    expect(result.pending).toEqual(["01", "02", "03", "05", "06"]);
  });

  it("a run claimed or finished twice in one call changes once; what is stored is what a fresh owner reads", async () => {
    const result = await withOwner(async (owner, fresh) => {
      owner.insertMany([newTask(1), newTask(2)]);
      const a = newTask(1).id;
      const b = newTask(2).id;
      const claims = owner.claimMany([
        { id: a, attempt: 1, now: NOW },
        { id: a, attempt: 1, now: NOW },
        { id: b, attempt: 1, now: NOW },
      ]);
      const outcome = { status: "succeeded" as const, result: { status: 200 } };
      const finishes = await owner.finishMany([
        { id: a, attempt: 1, outcome, now: NOW + 10 },
        { id: a, attempt: 1, outcome, now: NOW + 20 },
        { id: b, attempt: 1, outcome: { status: "retrying" as const, error: { message: "503" }, availableAt: NOW + 5_000 }, now: NOW + 30 },
      ]);
      const reread = fresh();
      return { claims: claims.map((c) => c?.status ?? null), finishes, stored: [reread.get(a), reread.get(b)] };
    });
    expect(result.claims).toEqual(["running", null, "running"]);
    expect(result.finishes.map((f) => f?.status ?? null)).toEqual(["succeeded", null, "retrying"]);
    expect(result.stored[0]).toEqual(result.finishes[0]);
    expect(result.stored[1]).toEqual(result.finishes[2]);
    expect(result.stored[0]).toMatchObject({ durationMs: 10, finishedAt: NOW + 10 });
  });

  it("runs too big for one statement are written in several, every one of them", async () => {
    const big = "x".repeat(7_000);
    const stored = await withOwner(async (owner, fresh) => {
      const runs = Array.from({ length: 80 }, (_, n) => ({ ...newTask(n), result: { body: big } }));
      const written = owner.insertMany(runs).filter((a) => "run" in a && a.created).length;
      const a = owner.claimMany(runs.map((r) => ({ id: r.id, attempt: 1, now: NOW }))).filter(Boolean).length;
      const reread = fresh();
      return { written, claimed: a, running: runs.filter((r) => reread.get(r.id)?.status === "running").length };
    });
    expect(stored).toEqual({ written: 80, claimed: 80, running: 80 });
  });
});

describe("an owner woken afresh for each run (an evicted object)", () => {
  it("adds its runs to the statistics when the hour closes, not at every wake", async () => {
    const H = 3_600_000;
    // Stay clear of an hour boundary in the middle of the test.
    if (Math.ceil(Date.now() / H) * H - Date.now() < 15_000) await new Promise((r) => setTimeout(r, 16_000));
    const t0 = Date.now();
    const nextHour = Math.ceil(t0 / H) * H;
    const jobId = `flush-test-${crypto.randomUUID().slice(0, 8)}`;
    const stub = env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`ledger-test:${jobId}`));
    const flushes = async () =>
      (await env.DB.prepare("SELECT count(*) AS n FROM stats_flushes WHERE owner_id = ?").bind(`job:${jobId}`).first<{ n: number }>())?.n;
    const wake = (storage: DurableObjectStorage) =>
      new RunOwner(storage, () => env, jobRunPrefix(jobId), { finished: async () => {} }, { statsId: jobId, ownerId: `job:${jobId}` });
    const ended = (owner: RunOwner, n: number): RunRow => ({ ...smallTask(n), id: `${owner.idAt(t0 + n)}${"0".repeat(16)}`, jobId });

    for (const n of [1, 2, 3]) {
      await runInDurableObject(stub, async (_instance, state) => {
        const owner = wake(state.storage);
        owner.insert(ended(owner, n));
        await owner.upkeep(t0 + n * 1000);
      });
      expect(await flushes()).toBe(0);
    }
    await runInDurableObject(stub, async (_instance, state) => {
      await wake(state.storage).upkeep(nextHour + 1000);
    });
    expect(await flushes()).toBe(1);
    const stats = await env.DB.prepare("SELECT sum(succeeded) AS n FROM job_stats WHERE job_id = ?").bind(jobId).first<{ n: number }>();
    expect(stats?.n).toBe(3);
  });
});
