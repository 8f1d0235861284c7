import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { jobsDeletedAfterEach } from "../helpers/faults";
import { api } from "../helpers/http";
import { backdateNextFire, createJob, jobRuns, jobStub } from "../helpers/jobs";
import { eventually, receiverUrl } from "../helpers/receiver";
import { mustStoredRun, runReaches } from "../helpers/runs";

// Triggers mean what the contract says: the trigger's own jitter, the target's timeout,
// a date in the past, and a change that lands while a fire is due and its alarm is late.

const jobs = jobsDeletedAfterEach("change");

describe("a run's jitter and timeout come from the resolved trigger and target", () => {
  it("jitter set on the trigger delays the run after its slot (the job's own jitter is 0)", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url, { trigger: { type: "cron", expression: "0 0 1 1 *", jitter: 86_400 } });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));

    const [run] = await jobRuns(job.id);
    const stored = await mustStoredRun(run?.id ?? "");
    expect(run?.scheduled_for).toBe(slot);
    expect(stored.available_at).toBeGreaterThan(slot);
    expect(stored.available_at).toBeLessThanOrEqual(slot + 86_400_000);
  });

  it.each([
    ["the target's timeout wins over the job's", { timeout: 20, target: { timeout: 40 } }, 40],
    ["the job's timeout when the target has none", { timeout: 20 }, 20],
    ["30 s when neither has one", {}, 30],
  ] as const)("%s", async (_name, overrides, seconds) => {
    const { url } = receiverUrl();
    const { target, ...rest } = overrides as { timeout?: number; target?: { timeout: number } };
    const job = await jobs.yearly(url, { ...rest, target: { type: "http", url, ...target } });
    await backdateNextFire(job.id, Date.now() - 100);
    await runDurableObjectAlarm(jobStub(job.id));

    const [run] = await jobRuns(job.id);
    expect(await mustStoredRun(run?.id ?? "")).toMatchObject({ timeout: seconds });
  });
});

describe("a date trigger in the past (APScheduler's misfire rules)", () => {
  it("within misfire_grace_time it is accepted and runs at once, then the job is finished", async () => {
    const { url } = receiverUrl();
    const runAt = Date.now() - 5_000;
    const job = await createJob({
      id: jobs.newId(),
      trigger: { type: "date", run_at: new Date(runAt).toISOString() },
      target: { type: "http", url },
      misfire_grace_time: 60,
    });
    const run = await eventually(async () => (await jobRuns(job.id))[0], 5_000, "the past date to fire");
    expect(run).toMatchObject({ fire_slot: runAt });
    await runReaches(run.id, ["succeeded"]);
    const stored = await (await api(`/v1/jobs/${job.id}`)).json<{ state: string }>();
    expect(stored.state).toBe("finished");
  });

  it("older than misfire_grace_time it is recorded as missed, with no call", async () => {
    const { url } = receiverUrl();
    const runAt = Date.now() - 2 * 3_600_000;
    const job = await createJob({
      id: jobs.newId(),
      trigger: { type: "date", run_at: new Date(runAt).toISOString() },
      target: { type: "http", url },
      misfire_grace_time: 60,
    });
    const runs = await eventually(async () => {
      const found = await jobRuns(job.id);
      return found.length > 0 ? found : undefined;
    });
    expect(runs).toEqual([expect.objectContaining({ fire_slot: runAt, status: "missed" })]);
  });
});

describe("a change while a fire is due and its alarm is late", () => {
  it("PATCH of something other than the schedule keeps the due fire, which runs under the new version", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const patched = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "renamed" } });
    expect(patched.status).toBe(200);
    expect((await jobStub(job.id).inspect()).nextFire).toBe(slot);
    await runDurableObjectAlarm(jobStub(job.id));

    const [run] = await jobRuns(job.id);
    expect(run).toMatchObject({ fire_slot: slot });
    expect(await mustStoredRun(run?.id ?? "")).toMatchObject({ job_version: 2 });
  });

  it("pausing handles the due fire first, then the job fires nothing", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const paused = await api(`/v1/jobs/${job.id}/pause`, { method: "POST" });
    expect(paused.status).toBe(200);

    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ fire_slot: slot })]);
    // No fire is pending; it wakes once more, within ten minutes after the hour closes, to add the run to the statistics.
    const state = await jobStub(job.id).inspect();
    expect(state.nextFire).toBeNull();
    const closes = Math.ceil((Date.now() + 1) / 3_600_000) * 3_600_000;
    expect(state.alarm === null || (state.alarm >= closes && state.alarm < closes + 10 * 60_000)).toBe(true);
  });

  it("a new schedule handles the old schedule's due fire, then fires on the new one from now", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    const res = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { trigger: { type: "cron", expression: "0 0 1 7 *" } } });
    expect(res.status).toBe(200);

    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ fire_slot: slot })]);
    const { nextFire } = await jobStub(job.id).inspect();
    expect(new Date(nextFire ?? 0).toISOString()).toMatch(/-07-01T00:00:00.000Z$/);
  });
});

describe("an interval without start_date counts from when its trigger was set", () => {
  /** Test setup only: the job was created `ago` ms ago, and its trigger set then. */
  async function createdAgo(jobId: string, ago: number): Promise<void> {
    await env.DB.prepare("UPDATE jobs SET created_at = ?, anchored_at = NULL WHERE id = ?")
      .bind(Date.now() - ago, jobId)
      .run();
  }

  it("a new interval set by PATCH starts one interval after the change, not on the old creation's grid", async () => {
    const { url } = receiverUrl();
    const job = await createJob({ id: jobs.newId(), trigger: { type: "interval", seconds: 60 }, target: { type: "http", url } });
    await createdAgo(job.id, 1_000_000);

    const changedAt = Date.now();
    const res = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { trigger: { type: "interval", seconds: 90 } } });
    const patched = await res.json<{ next_run_at: string }>();

    expect(Math.abs(Date.parse(patched.next_run_at) - (changedAt + 90_000))).toBeLessThan(2_000);
    expect((await jobStub(job.id).inspect()).nextFire).toBe(Date.parse(patched.next_run_at));
  });

  it("a PATCH that leaves the trigger alone keeps the grid", async () => {
    const { url } = receiverUrl();
    const job = await createJob({ id: jobs.newId(), trigger: { type: "interval", seconds: 90 }, target: { type: "http", url } });
    await createdAgo(job.id, 1_000_000);
    const before = await (await api(`/v1/jobs/${job.id}`)).json<{ next_run_at: string }>();

    const res = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { name: "renamed", trigger: { type: "interval", seconds: 90 } } });

    expect((await res.json<{ next_run_at: string }>()).next_run_at).toBe(before.next_run_at);
  });
});
