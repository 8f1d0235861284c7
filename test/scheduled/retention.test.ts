import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newId } from "../../src/ids";
import { cronTick } from "../helpers/faults";

const MINUTE = 60_000;
const DAY = 86_400_000;
const RETENTION_DAYS = 30; // the default: the test environment sets no RUN_RETENTION_DAYS

interface SeedRun {
  id: string;
  jobId: string | null;
  status: string;
  createdAt: number;
}

/** Test setup: writes runs straight into D1, a few thousand per statement. */
async function seedRuns(seed: SeedRun[]): Promise<void> {
  for (let i = 0; i < seed.length; i += 4000) {
    const rows = seed.slice(i, i + 4000).map((r) => [r.id, r.jobId, r.status, r.createdAt]);
    await env.DB.prepare(
      `INSERT INTO runs (id, job_id, status, target, timeout, scheduled_for, available_at, started_at, finished_at, created_at, updated_at)
       SELECT value->>0, value->>1, value->>2, '{"type":"http","url":"https://example.com/hook"}', 30, value->>3, value->>3,
              value->>3, CASE WHEN value->>2 IN ('succeeded','failed','dead','cancelled','missed','skipped','expired') THEN value->>3 + 50 END,
              value->>3, value->>3
       FROM json_each(?)`,
    )
      .bind(JSON.stringify(rows))
      .run();
  }
}

const FINISHED = ["succeeded", "succeeded", "succeeded", "failed", "dead", "missed", "skipped", "cancelled", "expired"];
const UNFINISHED = ["scheduled", "queued", "running", "retrying"];

/** How many runs match, by a WHERE clause over runs. */
async function count(where: string, ...params: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM runs WHERE ${where}`)
    .bind(...params)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe("scheduled: retention keeps pace with a busy day", () => {
  it("heartbeat ticks delete every expired finished run of a 36,000-run day within a few ticks, one tick more than its busiest minute wrote, and keep younger and unfinished runs", async () => {
    const now = Date.now();
    const cutoff = now - RETENTION_DAYS * DAY;
    const dayStart = cutoff - DAY;
    // A day just past the window: seven jobs firing every 20 s (about 30,000 runs, three times
    // the old daily cap of 10,000) and a burst of 6,000 tasks in one minute.
    const expired: SeedRun[] = [];
    for (let t = dayStart; t < cutoff - MINUTE; t += 20_000)
      for (let j = 0; j < 7; j++)
        expired.push({
          id: newId("run", t + j),
          jobId: `busy-${j}`,
          status: FINISHED[expired.length % FINISHED.length] ?? "succeeded",
          createdAt: t + j,
        });
    const burstMinute = dayStart + 13 * 60 * MINUTE;
    for (let i = 0; i < 6000; i++) {
      const at = burstMinute + Math.floor((i * MINUTE) / 6000);
      expired.push({ id: newId("run", at), jobId: null, status: i % 10 === 0 ? "failed" : "succeeded", createdAt: at });
    }
    // Younger finished runs (inside the window) and old runs that never finished.
    const younger: SeedRun[] = Array.from({ length: 500 }, (_, i) => {
      const at = cutoff + MINUTE + i * 1000;
      return { id: newId("run", at), jobId: "busy-0", status: "succeeded", createdAt: at };
    });
    const unfinished: SeedRun[] = Array.from({ length: 200 }, (_, i) => {
      const at = dayStart - DAY + i * MINUTE;
      return {
        id: newId("run", at),
        jobId: i % 2 === 0 ? null : "busy-1",
        status: UNFINISHED[i % UNFINISHED.length] ?? "queued",
        createdAt: at,
      };
    });
    await seedRuns([...expired, ...younger, ...unfinished]);
    const perMinute = new Map<number, number>();
    for (const r of expired) perMinute.set(Math.floor(r.createdAt / MINUTE), (perMinute.get(Math.floor(r.createdAt / MINUTE)) ?? 0) + 1);
    const busiestMinute = Math.max(...perMinute.values());
    const expiredLeft = () => count("created_at < ? AND finished_at IS NOT NULL", cutoff);
    expect(await expiredLeft()).toBe(expired.length);

    const deletedPerTick: number[] = [];
    for (let tick = 0; tick < 5 && (await expiredLeft()) > 0; tick++) {
      const before = await count("1");
      await cronTick(env, Math.floor(Date.now() / MINUTE) * MINUTE + tick * MINUTE);
      deletedPerTick.push(before - (await count("1")));
    }

    expect(await expiredLeft()).toBe(0);
    expect(deletedPerTick.length).toBeLessThanOrEqual(2);
    expect(deletedPerTick[0]).toBeGreaterThanOrEqual(busiestMinute);
    expect(deletedPerTick.reduce((a, b) => a + b, 0)).toBe(expired.length);
    expect(await count("created_at >= ?", cutoff)).toBe(younger.length);
    expect(await count("finished_at IS NULL")).toBe(unfinished.length);
  }, 60_000);
});
