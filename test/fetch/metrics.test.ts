import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { beforeEach, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { cronTick } from "../helpers/faults";
import { api, BASE, TOKEN } from "../helpers/http";
import { createJob, deleteJob } from "../helpers/jobs";
import { meteredD1 } from "../helpers/metered-d1";
import { flushStats } from "../helpers/owners";
import { eventually, receiverUrl } from "../helpers/receiver";

const HOUR = 3_600_000;
const MINUTE = 60_000;
const thisHour = () => Math.floor(Date.now() / HOUR) * HOUR;
/** The heartbeat folds an hour this long after it closed (src/observe/job-totals.ts). */
const FOLD_GRACE = 15 * MINUTE;

interface Counters {
  succeeded: number;
  failed: number;
  dead: number;
  count: number;
  sum: number;
}

/**
 * Test setup: `hours` hourly rollups per job, the current hour and those before it, written
 * straight into job_stats. Returns what each job's series must add up to.
 */
async function seedHours(jobIds: string[], hours: number): Promise<Map<string, Counters>> {
  const expected = new Map<string, Counters>();
  const rows: number[][] = [];
  const ids: string[] = [];
  for (const [j, jobId] of jobIds.entries()) {
    const total: Counters = { succeeded: 0, failed: 0, dead: 0, count: 0, sum: 0 };
    for (let h = 0; h < hours; h++) {
      const succeeded = 1 + ((h + j) % 5);
      const failed = (h + j) % 3 === 0 ? 1 : 0;
      const dead = h % 50 === 0 ? 1 : 0;
      const count = succeeded + failed + dead;
      const sum = count * 100; // every duration is 100 ms: bucket b3 (<= 0.1 s)
      rows.push([j, thisHour() - h * HOUR, succeeded, failed, dead, count, sum]);
      total.succeeded += succeeded;
      total.failed += failed;
      total.dead += dead;
      total.count += count;
      total.sum += sum;
    }
    ids.push(jobId);
    expected.set(jobId, total);
  }
  for (let i = 0; i < rows.length; i += 5000) {
    await env.DB.prepare(
      `INSERT INTO job_stats (job_id, hour, succeeded, failed, dead, duration_count, duration_sum_ms, b3)
       SELECT json_extract(?, '$[' || (value->>0) || ']'), value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>5
       FROM json_each(?)`,
    )
      .bind(JSON.stringify(ids), JSON.stringify(rows.slice(i, i + 5000)))
      .run();
  }
  return expected;
}

/** Scrapes /metrics through the Worker's fetch entry point, with `bindings` in place of the real ones. */
async function scrape(bindings: Partial<Env> = {}): Promise<string> {
  const request = new Request(`${BASE}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }) as Request<
    unknown,
    IncomingRequestCfProperties
  >;
  const res = await worker.fetch(request, { ...env, ...bindings }, createExecutionContext());
  expect(res.status).toBe(200);
  return res.text();
}

interface Family {
  name: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}

/** Each job's counters as the exposition reports them (the histogram's count and sum read from its lines). */
function seriesOf(text: string): Map<string, Counters> {
  const families = parsePrometheusTextFormat(text) as Family[];
  const runs = families.find((f) => f.name === "taskflare_runs_total")?.metrics ?? [];
  const out = new Map<string, Counters>();
  const of = (jobId: string) => {
    const c = out.get(jobId) ?? { succeeded: 0, failed: 0, dead: 0, count: 0, sum: 0 };
    out.set(jobId, c);
    return c;
  };
  for (const m of runs) {
    const outcome = m.labels?.outcome;
    if (outcome === "succeeded" || outcome === "failed" || outcome === "dead") of(m.labels?.job_id ?? "?")[outcome] = Number(m.value);
  }
  for (const [, part, jobId = "", value] of text.matchAll(/^taskflare_run_duration_seconds_(count|sum)\{job_id="([^"]*)"\} (\S+)$/gm)) {
    if (part === "count") of(jobId).count = Number(value);
    else of(jobId).sum = Math.round(Number(value) * 1000);
  }
  return out;
}

/** The hour the heartbeat has folded job_stats into job_totals through (-1 before the first fold). */
async function watermark(): Promise<number> {
  const row = await env.DB.prepare("SELECT value FROM scheduler_state WHERE key = 'stats_folded_through'").first<{ value: string }>();
  return row ? Number(row.value) : -1;
}

/** Heartbeat ticks through the scheduled entry point until every closed hour is folded. */
async function foldEverything(): Promise<number> {
  const closed = Math.floor((Date.now() - FOLD_GRACE) / HOUR) * HOUR - HOUR;
  let ticks = 0;
  while ((await watermark()) < closed && ticks < 20) await cronTick(env, Math.floor(Date.now() / MINUTE) * MINUTE + ticks++ * MINUTE);
  expect(await watermark()).toBe(closed);
  return ticks;
}

const yearly = (id: string) =>
  createJob({ id, trigger: { type: "cron", expression: "0 0 1 1 *" }, target: { type: "http", url: "https://example.com/never" } });

beforeEach(async () => {
  // Each test starts from an empty history: no rollups, no totals, nothing folded.
  await env.DB.batch([
    env.DB.prepare("DELETE FROM job_stats"),
    env.DB.prepare("DELETE FROM job_totals"),
    env.DB.prepare("DELETE FROM scheduler_state WHERE key = 'stats_folded_through'"),
  ]);
});

describe("GET /metrics reads what is proportional to the live jobs", () => {
  it("a scrape after 500 hours of rollups of 20 jobs, tasks and 10 deleted jobs reads a few rows per live job, and every series adds up", async () => {
    const stamp = Date.now();
    const live = Array.from({ length: 20 }, (_, i) => `live-${stamp}-${i}`);
    for (const id of live) await yearly(id);
    try {
      const gone = Array.from({ length: 10 }, (_, i) => `gone-${stamp}-${i}`); // rollups of jobs deleted long ago
      const expected = await seedHours([...live, "", ...gone], 500);
      const unfolded = meteredD1();
      await scrape({ DB: unfolded.db });

      const ticks = await foldEverything();
      const metered = meteredD1();
      const text = await scrape({ DB: metered.db });

      const series = seriesOf(text);
      for (const id of live) expect(series.get(id)).toEqual(expected.get(id));
      expect(series.get("(task)")).toEqual(expected.get(""));
      for (const id of gone) expect(series.has(id)).toBe(false);
      // 15,500 hourly rows, folded in steps of a week. Unfolded, a scrape reads every one of them;
      // folded, a total per live job and the last hour or two of each job with rollups (here
      // about 200 rows: 6 per job, the sorting of the GROUP BY included).
      expect(ticks).toBeGreaterThanOrEqual(3);
      expect(unfolded.rowsRead()).toBeGreaterThan(15_500);
      expect(metered.rowsRead()).toBeLessThan(10 * (live.length + 1 + gone.length));
    } finally {
      for (const id of live) await deleteJob(id);
    }
  }, 60_000);

  it("a deleted job's series are gone from /metrics, and a job created again with its id starts at zero", async () => {
    const id = `deleted-${Date.now()}`;
    await yearly(id);
    const expected = await seedHours([id], 30);
    await foldEverything();
    expect(seriesOf(await scrape()).get(id)).toEqual(expected.get(id));

    await api(`/v1/jobs/${id}`, { method: "DELETE" });

    expect(await scrape()).not.toContain(`job_id="${id}"`);
    const left = await env.DB.prepare(
      "SELECT (SELECT count(*) FROM job_totals WHERE job_id = ?1) + (SELECT count(*) FROM job_stats WHERE job_id = ?1) AS n",
    )
      .bind(id)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
    await yearly(id);
    try {
      expect(await scrape()).not.toContain(`job_id="${id}"`);
    } finally {
      await deleteJob(id);
    }
  });

  it("every series stays exactly right across folds, a repeated tick and two concurrent ticks, and counts a new run once", async () => {
    const stamp = Date.now();
    const jobs = [`exact-${stamp}-a`, `exact-${stamp}-b`];
    for (const id of jobs) await yearly(id);
    try {
      const expected = await seedHours([...jobs, ""], 400);
      const check = async () => {
        const series = seriesOf(await scrape());
        for (const id of jobs) expect(series.get(id)).toEqual(expected.get(id));
        expect(series.get("(task)")).toEqual(expected.get(""));
      };
      await check();
      const watermarks = new Set<number>();
      const closed = Math.floor((Date.now() - FOLD_GRACE) / HOUR) * HOUR - HOUR;
      for (let tick = 0; tick < 10 && !watermarks.has(closed); tick++) {
        const minute = Math.floor(Date.now() / MINUTE) * MINUTE + tick * MINUTE;
        await cronTick(env, minute);
        watermarks.add(await watermark());
        await check();
        await cronTick(env, minute); // the same tick again
        watermarks.add(await watermark());
        await check();
        await Promise.all([cronTick(env, minute), cronTick(env, minute)]);
        watermarks.add(await watermark());
        await check();
      }
      // 400 hours fold in steps of a week: several folds, each checked above.
      expect(watermarks.has(closed)).toBe(true);
      expect(Math.min(...watermarks)).toBeLessThan(closed - 7 * 24 * HOUR);
      const totals = await env.DB.prepare("SELECT job_id, succeeded FROM job_totals WHERE job_id IN (?, ?, '') ORDER BY job_id")
        .bind(...jobs)
        .all<{ job_id: string; succeeded: number }>();
      expect(totals.results).toHaveLength(3);

      // A task run now lands in the current hour's rollup: counted once, on top of the totals.
      const { url } = receiverUrl();
      const task = await (await api("/v1/tasks", { method: "POST", json: { target: { type: "http", url } } })).json<{ id: string }>();
      await eventually(
        async () => (await (await api(`/v1/tasks/${task.id}`)).json<{ status: string }>()).status === "succeeded",
        10_000,
        "the task to succeed",
      );
      const tasks = expected.get("");
      if (tasks) tasks.succeeded += 1;
      // Its shard adds it to the rollups in a batch (flushed here, and again: it is counted once).
      await flushStats();
      await flushStats();
      const series = seriesOf(await scrape()).get("(task)");
      expect(series?.succeeded).toBe(tasks?.succeeded);
      expect(series?.count).toBe((tasks?.count ?? 0) + 1);
    } finally {
      for (const id of jobs) await deleteJob(id);
    }
  }, 60_000);
});
