import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { faultyD1, recordSchedule, storedJob, useBindingsInJobObject } from "../helpers/faults";
import { api } from "../helpers/http";
import { backdateNextFire, createJob, deleteJob, holdLeases, jobRuns, jobStub } from "../helpers/jobs";
import { eventually, received, receiverUrl } from "../helpers/receiver";

const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) await deleteJob(created.pop() ?? "");
});

let counter = 0;
/** A job whose own clock stays far away, so only the test's alarms make it fire. */
async function quietJob(overrides: Record<string, unknown> = {}) {
  const id = `alarm-${Date.now()}-${counter++}`;
  created.push(id);
  const { url } = receiverUrl();
  return createJob({
    id,
    trigger: { type: "interval", seconds: 1, start_date: "2099-01-01T00:00:00Z" },
    target: { type: "http", url },
    ...overrides,
  });
}

describe("JobObject alarm: the fire decision", () => {
  it("runs a due fire once and arms the next one", async () => {
    const job = await quietJob({ trigger: { type: "interval", seconds: 1 }, misfire_grace_time: 60 });
    await backdateNextFire(job.id, Date.now() - 200);
    await runDurableObjectAlarm(jobStub(job.id));
    const runs = await jobRuns(job.id);
    expect(runs.filter((r) => r.status !== "missed").length).toBeGreaterThanOrEqual(1);
    const state = await jobStub(job.id).inspect();
    expect(state.alarm).not.toBeNull();
    expect(state.nextFire).toBeGreaterThan(Date.now() - 1000);
  });

  it("records a fire later than misfire_grace_time as missed, without running it", async () => {
    const job = await quietJob({ trigger: { type: "cron", expression: "0 0 1 1 *" }, misfire_grace_time: 1 });
    const slot = Date.now() - 30_000;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    const runs = await jobRuns(job.id);
    expect(runs).toEqual([expect.objectContaining({ status: "missed", fire_slot: slot })]);
  });

  it("with coalesce, runs a backlog of fires once, at the latest fire", async () => {
    const job = await quietJob({
      trigger: { type: "interval", seconds: 60, start_date: "2020-01-01T00:00:00Z" },
      coalesce: true,
      misfire_grace_time: 3600,
    });
    const minute = 60_000;
    const first = Math.floor(Date.now() / minute) * minute - 5 * minute;
    await backdateNextFire(job.id, first);
    await runDurableObjectAlarm(jobStub(job.id));
    const runs = await jobRuns(job.id);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.fire_slot).toBe(first + 5 * minute);
  });

  it("without coalesce, runs each fire of the backlog", async () => {
    const job = await quietJob({
      trigger: { type: "interval", seconds: 60, start_date: "2020-01-01T00:00:00Z" },
      coalesce: false,
      misfire_grace_time: 3600,
      max_instances: 10,
    });
    const minute = 60_000;
    const first = Math.floor(Date.now() / minute) * minute - 4 * minute;
    await backdateNextFire(job.id, first);
    await runDurableObjectAlarm(jobStub(job.id));
    const slots = (await jobRuns(job.id)).map((r) => r.fire_slot);
    expect(slots).toEqual(
      [first, first + minute, first + 2 * minute, first + 3 * minute, first + 4 * minute].filter((s) => s <= Date.now()),
    );
  });

  it("records a fire as skipped while max_instances runs are in flight", async () => {
    const job = await quietJob({ max_instances: 1, misfire_grace_time: 60 });
    await holdLeases(job.id, 1);
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ status: "skipped", fire_slot: slot })]);
  });

  it("starts nothing while the scheduler is paused, and does not replay those fires on resume", async () => {
    const job = await quietJob({ misfire_grace_time: 60 });
    expect((await api("/v1/scheduler/pause", { method: "POST" })).status).toBe(200);
    try {
      await backdateNextFire(job.id, Date.now() - 100);
      await runDurableObjectAlarm(jobStub(job.id));
      expect(await jobRuns(job.id)).toEqual([]);
    } finally {
      await api("/v1/scheduler/resume", { method: "POST" });
    }
    const state = await jobStub(job.id).inspect();
    expect(state.nextFire).toBeGreaterThan(Date.now() - 1000);
    expect(await jobRuns(job.id)).toEqual([]);
  });

  it("while the scheduler is paused, a late or blocked fire is not recorded as missed or skipped either", async () => {
    const late = await quietJob({ trigger: { type: "cron", expression: "0 0 1 1 *" }, misfire_grace_time: 1 });
    const blocked = await quietJob({ max_instances: 1, misfire_grace_time: 60 });
    await holdLeases(blocked.id, 1);
    expect((await api("/v1/scheduler/pause", { method: "POST" })).status).toBe(200);
    try {
      await backdateNextFire(late.id, Date.now() - 30_000);
      await backdateNextFire(blocked.id, Date.now() - 100);
      await runDurableObjectAlarm(jobStub(late.id));
      await runDurableObjectAlarm(jobStub(blocked.id));
      expect(await jobRuns(late.id)).toEqual([]);
      expect(await jobRuns(blocked.id)).toEqual([]);
    } finally {
      await api("/v1/scheduler/resume", { method: "POST" });
    }
  });

  it("a due fire writes its run in the JobObject, not D1: D1 only hears of the job's promise when it moves", async () => {
    const job = await quietJob({ misfire_grace_time: 60 });
    const d1 = faultyD1();
    await useBindingsInJobObject(job.id, { DB: d1.db });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));

    expect(await jobRuns(job.id)).toEqual([expect.objectContaining({ fire_slot: slot })]);
    // This job's clock moved from 2099 to now, so its promise (jobs.next_run_at) changes: the one D1 write.
    const writes = d1.calls.flat().filter((sql) => !/^\s*select\b/i.test(sql));
    expect(writes).toEqual([expect.stringMatching(/^update "jobs" set "next_run_at" = \?/)]);
    const { nextFire } = await jobStub(job.id).inspect();
    expect((await storedJob(job.id))?.next_run_at).toBe(nextFire);
    const [run] = await jobRuns(job.id);
    const shown = await (await api(`/v1/runs/${run?.id}`)).json<{ job_id: string; expires_at: unknown; scheduled_for: string }>();
    expect(shown).toMatchObject({ job_id: job.id, expires_at: null, scheduled_for: new Date(slot).toISOString() });
  });

  it("a fire slot yields one run even when the alarm is delivered again after a crash", async () => {
    const job = await quietJob({ misfire_grace_time: 60 });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    // The JobObject forgot it handled the slot (as if it crashed before saving): the D1 key still holds.
    await backdateNextFire(job.id, slot);
    await runDurableObjectAlarm(jobStub(job.id));
    const runs = await jobRuns(job.id);
    expect(runs.filter((r) => r.fire_slot === slot)).toHaveLength(1);
  });

  it("finishes a job whose end_date has passed", async () => {
    const job = await quietJob({
      trigger: { type: "interval", seconds: 1, start_date: "2020-01-01T00:00:00Z", end_date: "2020-01-02T00:00:00Z" },
    });
    expect(job.state).toBe("finished");
    expect(job.next_run_at).toBeNull();
    expect((await jobStub(job.id).inspect()).alarm).toBeNull();
  });
});

describe("pause and resume", () => {
  it("pausing a job removes its alarm; resuming computes the next fire from now", async () => {
    const job = await quietJob({ trigger: { type: "cron", expression: "*/5 * * * * *" } });
    const paused = await (await api(`/v1/jobs/${job.id}/pause`, { method: "POST" })).json<{
      state: string;
      next_run_at: string | null;
      version: number;
    }>();
    expect(paused.state).toBe("paused");
    expect(paused.next_run_at).toBeNull();
    expect((await jobStub(job.id).inspect()).alarm).toBeNull();
    const before = Date.now();
    const resumed = await (await api(`/v1/jobs/${job.id}/resume`, { method: "POST" })).json<{
      state: string;
      next_run_at: string;
      version: number;
    }>();
    expect(resumed.state).toBe("active");
    expect(Date.parse(resumed.next_run_at)).toBeGreaterThan(before);
    expect(Date.parse(resumed.next_run_at)).toBeLessThanOrEqual(before + 5_000);
    expect(resumed.version).toBe(paused.version + 1);
  });
});

describe("the schedule the JobObject keeps in D1 (jobs.next_run_at: when it promises to report in)", () => {
  it("is written after the fire's call: D1's round trip is not on the fire's path", async () => {
    const { url, prefix } = receiverUrl();
    const job = await quietJob({ trigger: { type: "cron", expression: "0 0 1 1 *" }, target: { type: "http", url } });
    const d1 = faultyD1();
    let callsBeforeWrite: number | undefined;
    d1.interleave(recordSchedule, async () => {
      callsBeforeWrite = (await received(prefix)).length;
    });
    await useBindingsInJobObject(job.id, { DB: d1.db });
    // The fire moves the job's next fire past what D1 holds (a year ahead): the promise is written.
    await backdateNextFire(job.id, Date.now() - 100);
    expect(await runDurableObjectAlarm(jobStub(job.id))).toBe(true);
    expect(callsBeforeWrite).toBe(1);
    expect((await storedJob(job.id))?.next_run_at).toBeGreaterThan(Date.now());
  });

  it("a job firing every second does not write its jobs row on each fire: it promises half an hour ahead", async () => {
    const job = await quietJob({ trigger: { type: "interval", seconds: 1 }, misfire_grace_time: 60 });
    const promised = (await storedJob(job.id))?.next_run_at ?? 0;
    expect(promised).toBeGreaterThan(Date.now() + 29 * 60_000);
    const d1 = faultyD1();
    await useBindingsInJobObject(job.id, { DB: d1.db });
    const fired = (await jobRuns(job.id)).length;

    await eventually(async () => (await jobRuns(job.id)).length >= fired + 3, 8_000, "three more fires");

    expect(d1.calls.flat().filter((sql) => recordSchedule({ sql, params: [] }))).toEqual([]);
    expect(await storedJob(job.id)).toMatchObject({ state: "active", next_run_at: promised });
  }, 15_000);

  it("a job firing less often than the horizon promises its next fire, renewed by each fire", async () => {
    const job = await quietJob({ trigger: { type: "cron", expression: "0 0 * * *" }, misfire_grace_time: 3600 });
    const slot = Date.now() - 100;
    await backdateNextFire(job.id, slot);

    await runDurableObjectAlarm(jobStub(job.id));

    const { nextFire } = await jobStub(job.id).inspect();
    expect(nextFire).toBeGreaterThan(Date.now());
    expect((await storedJob(job.id))?.next_run_at).toBe(nextFire);
  });

  it("a date job that has fired is recorded as finished, with no promise, in one D1 write", async () => {
    const job = await quietJob({ trigger: { type: "date", run_at: new Date(Date.now() + 1_000).toISOString() } });
    expect(await storedJob(job.id)).toMatchObject({ state: "active" });
    const d1 = faultyD1();
    await useBindingsInJobObject(job.id, { DB: d1.db });

    await eventually(async () => (await storedJob(job.id))?.state === "finished", 5_000, "the fire to finish the job");

    expect(await storedJob(job.id)).toEqual({ state: "finished", next_run_at: null });
    const writes = d1.calls.flat().filter((sql) => !/^\s*select\b/i.test(sql));
    expect(writes).toEqual([expect.stringMatching(/^update "jobs" set "state" = \?, "next_run_at" = \?/)]);
    expect(await jobRuns(job.id)).toHaveLength(1);
    // No fire is left; it wakes once more, when the hour closes, to add its run to the statistics.
    const state = await jobStub(job.id).inspect();
    expect(state.nextFire).toBeNull();
    // It wakes once more, within ten minutes after the hour closes (its own offset), to add the run to the statistics.
    const closes = Math.ceil((Date.now() + 1) / 3_600_000) * 3_600_000;
    expect(state.alarm).toBeGreaterThanOrEqual(closes);
    expect(state.alarm).toBeLessThan(closes + 10 * 60_000);
  });
});
