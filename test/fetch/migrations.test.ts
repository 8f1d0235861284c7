import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { fireRunId } from "../../src/ids";
import { deadlinesPassed, getJob, overdueJobs } from "../../src/jobs/store";
import { foldClosedHours, liveJobCounters } from "../../src/observe/job-totals";
import { listLegacyRuns } from "../../src/runs/queries";
import { overdueRuns } from "../../src/runs/store";
import { faultyD1 } from "../helpers/faults";

describe("D1 migrations", () => {
  it("create every table the design names", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all<{ name: string }>();
    const names = results.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(["jobs", "runs", "job_stats", "scheduler_state"]));
  });

  it("index runs by job and time, unfinished runs by due time, failures, and idempotency key", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'").all<{
      name: string;
    }>();
    const names = results.map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining(["runs_job_scheduled_idx", "runs_pending_idx", "runs_failed_idx", "runs_idempotency_key_uq"]),
    );
    // One run per fire slot is the primary key's job (the run id is derived from the slot), not an index's.
    expect(names).not.toContain("runs_job_fire_slot_uq");
  });

  it("allow at most one run per fire slot of a job: its id is derived from the job and the slot", async () => {
    const insert = async (jobId: string, slot: number) =>
      env.DB.prepare(
        "INSERT INTO runs (id, job_id, fire_slot, status, target, timeout, scheduled_for, available_at) VALUES (?, ?, ?, 'queued', '{}', 30, ?, ?)",
      ).bind(await fireRunId(jobId, slot), jobId, slot, slot, slot);
    await (await insert("job-a", 1000)).run();
    await (await insert("job-a", 2000)).run();
    await (await insert("job-b", 1000)).run();
    await expect((await insert("job-a", 1000)).run()).rejects.toThrow(/UNIQUE/);
  });

  it("serve the heartbeat's overdue scan, status listings, in-flight counts, latest failures and a job's last run from indexes", async () => {
    const d1 = faultyD1();
    const db = database(d1.db);
    await overdueRuns(db, Date.now(), Date.now(), 10);
    await listLegacyRuns(db, { status: "queued", limit: 10 });
    await listLegacyRuns(db, { status: "failed", limit: 10 });
    await getJob(db, "a-job");
    await deadlinesPassed(db, Date.now(), 10);
    await overdueJobs(db, Date.now(), 10);
    const [overdue, queued, failed, job, deadlines, readiness] = d1.calls.map((call) => call[0] ?? "");
    // The plan does not depend on the values: each parameter is bound to null.
    const plan = async (sql: string) => {
      const params = Array.from(sql.matchAll(/\?/g), () => null);
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      return results.map((r) => r.detail).join(" | ");
    };
    expect(await plan(overdue ?? "")).toMatch(/SEARCH runs USING INDEX runs_pending_idx \(available_at<\?\)/);
    expect(await plan(queued ?? "")).toMatch(/runs_pending_idx/);
    expect(await plan(failed ?? "")).toMatch(/runs_failed_idx/);
    // A job's last_run_at is its latest run, one step down runs_job_scheduled_idx.
    expect(await plan(job ?? "")).toMatch(/SEARCH r USING INDEX runs_job_scheduled_idx \(job_id=\?\)/);
    // The dead-man's switch reads overdue deadlines only, not every active job, in deadline order (no sort).
    expect(await plan(deadlines ?? "")).toMatch(/^SEARCH jobs USING INDEX jobs_success_deadline_idx \(success_deadline_at<\?\)$/);
    // /readyz: jobs in a missed-deadline incident, from their own partial index.
    expect(await plan(readiness ?? "")).toMatch(/^(SEARCH|SCAN) jobs USING INDEX jobs_deadline_missed_idx( \(deadline_missed_at>\?\))?$/);
    expect(await plan(d1.calls[5]?.[1] ?? "")).toMatch(/^SEARCH jobs USING INDEX jobs_success_deadline_idx \(success_deadline_at<\?\)$/);
    expect(
      await plan("SELECT status, count(*) FROM runs WHERE finished_at IS NULL AND status IN ('queued', 'running') GROUP BY status"),
    ).toMatch(/runs_pending_idx/);
    expect(await plan("SELECT id FROM runs WHERE status IN ('failed', 'dead') ORDER BY finished_at DESC LIMIT 10")).toMatch(
      /runs_failed_idx/,
    );
  });

  it("serve a scrape's and a fold's reads of hourly rollups from the hour index: only the hours after the watermark", async () => {
    const d1 = faultyD1();
    const db = database(d1.db);
    await liveJobCounters(db);
    await foldClosedHours(db, Date.now());
    const scrape = d1.calls[0]?.[0] ?? "";
    const fold = d1.calls.flat().find((sql) => sql.startsWith("INSERT INTO job_totals")) ?? "";
    const plan = async (sql: string) => {
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...Array.from(sql.matchAll(/\?/g), () => null))
        .all<{ detail: string }>();
      return results.map((r) => r.detail).join(" | ");
    };
    expect(await plan(scrape)).toMatch(/SEARCH job_stats USING INDEX job_stats_hour_idx \(hour>\?\)/);
    expect(await plan(fold)).toMatch(/SEARCH s USING INDEX job_stats_hour_idx \(hour>\? AND hour<\?\)/);
  });
});
