import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("D1 migrations", () => {
  it("create every table the design names", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all<{ name: string }>();
    const names = results.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(["jobs", "runs", "job_stats", "scheduler_state"]));
  });

  it("index runs by job and time, by status and by idempotency key", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'").all<{ name: string }>();
    const names = results.map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining(["runs_job_scheduled_idx", "runs_status_idx", "runs_idempotency_key_uq", "runs_job_fire_slot_uq"]),
    );
  });

  it("allow at most one run per fire slot of a job", async () => {
    const insert = (id: string) =>
      env.DB.prepare(
        "INSERT INTO runs (id, job_id, fire_slot, status, target, timeout, scheduled_for, available_at) VALUES (?, 'job-a', 1000, 'queued', '{}', 30, 1000, 1000)",
      ).bind(id);
    await insert("run-1").run();
    await expect(insert("run-2").run()).rejects.toThrow(/UNIQUE/);
  });
});
