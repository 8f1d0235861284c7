import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Env } from "../../src/env";
import type { RunRow } from "../../src/runs/store";
import type { JobObject } from "../../src/scheduling/job-object";
import { ScheduleRecord } from "../../src/scheduling/schedule-record";
import { api } from "./http";

export interface JobBody {
  id: string;
  state: string;
  version: number;
  next_run_at: string | null;
  next_run_times?: { at: string; local: string; utc_offset: string; note?: string }[];
  timezone: string;
}

/** Creates a job through the API and returns what the API answered. */
export async function createJob(body: Record<string, unknown>): Promise<JobBody> {
  const res = await api("/v1/jobs", { method: "POST", json: body });
  if (res.status !== 201) throw new Error(`job create failed: ${res.status} ${await res.text()}`);
  return res.json<JobBody>();
}

/** Deletes a job so its alarm does not outlive the test (alarms are not reset between tests). */
export async function deleteJob(id: string): Promise<void> {
  await api(`/v1/jobs/${id}`, { method: "DELETE" });
}

/** The JobObject stub of a job. */
export function jobStub(id: string): DurableObjectStub<JobObject> {
  return env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(id));
}

/**
 * Test setup only: moves the job's pending fire into the past, as if its alarm had been delayed.
 * As for a job whose alarm was armed for that fire, the fire is also what it promised D1.
 */
export async function backdateNextFire(id: string, nextFire: number): Promise<void> {
  await runInDurableObject(jobStub(id), async (instance: JobObject, state) => {
    const recorded = { state: "active", nextRunAt: nextFire };
    const holder = instance as unknown as { nextFire: number; record: ScheduleRecord; env: Env };
    holder.nextFire = nextFire;
    holder.record = new ScheduleRecord(state.storage, () => holder.env, recorded);
    await state.storage.put({ nextFire, recorded });
  });
  await env.DB.prepare("UPDATE jobs SET next_run_at = ? WHERE id = ?").bind(nextFire, id).run();
}

/** Test setup only: pretends `count` runs hold in-flight leases on the job. */
export async function holdLeases(id: string, count: number): Promise<void> {
  await runInDurableObject(jobStub(id), async (instance: JobObject) => {
    const leases = (instance as unknown as { leases: Map<string, number> }).leases;
    for (let i = 0; i < count; i++) leases.set(`held-${i}`, Date.now() + 3_600_000);
  });
}

/** A job's runs (its JobObject keeps them), oldest fire first. */
export async function jobRuns(jobId: string): Promise<{ id: string; status: string; fire_slot: number | null; scheduled_for: number }[]> {
  const runs = (await jobStub(jobId).listRuns(jobId, { limit: 10_000 })) as unknown as RunRow[];
  return runs
    .map((r) => ({ id: r.id, status: r.status, fire_slot: r.fireSlot, scheduled_for: r.scheduledFor }))
    .sort((a, b) => a.scheduled_for - b.scheduled_for || (a.id < b.id ? -1 : 1));
}

/** Test setup only: the job's recent attempts took 5 s, so its attempts go through the queue. */
export async function slowTarget(jobId: string): Promise<void> {
  await runInDurableObject(jobStub(jobId), async (instance: JobObject) => {
    (instance as unknown as { recentDurations: number[] }).recentDurations = [5_000];
  });
}
