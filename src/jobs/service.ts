import { database } from "../db/client";
import { type Env, readConfig } from "../env";
import { ApiError } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { newId } from "../ids";
import { forgetJobStats } from "../observe/job-totals";
import { cancelPendingRunsOfJob, type RunRow } from "../runs/store";
import type { RunNowResult } from "../scheduling/job-object";
import { jobObject } from "./present";
import { JobDefinition, type JobPatch } from "./schema";
import { definitionOf, deleteJob, getJob, insertJob, type JobRow, type JobView, updateJob, upsertJob } from "./store";

/**
 * What the jobs API does, callable from HTTP routes, the dashboard and the
 * service-binding RPC alike: definitions in D1, clocks and locks in JobObjects.
 */

/** Checks what the schema cannot: the target's handler and SSRF rules. */
function checked(env: Env, def: JobDefinition): JobDefinition {
  return { ...def, target: validateTarget(def.target, readConfig(env)) };
}

/** Creates a job; 409 if the id exists (APScheduler's ConflictingIdError). */
export async function createJob(env: Env, id: string | undefined, def: JobDefinition): Promise<JobView> {
  const jobId = id ?? newId("job");
  const row = await insertJob(database(env.DB), jobId, checked(env, def), Date.now());
  if (!row) throw new ApiError("conflict", `A job with id ${JSON.stringify(jobId)} exists; use PUT to replace it`, { id: jobId });
  return armJob(env, row);
}

/** Creates or replaces a job (PUT). */
export async function putJob(env: Env, id: string, def: JobDefinition): Promise<{ row: JobView; created: boolean }> {
  const { row, created } = await upsertJob(database(env.DB), id, checked(env, def), Date.now());
  return { row: await armJob(env, row), created };
}

/** Applies a partial change; a new trigger reschedules from now. */
export async function patchJob(env: Env, id: string, patch: JobPatch): Promise<JobView> {
  const row = await requireJob(env, id);
  const given: Record<string, unknown> = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  const base: Record<string, unknown> = { ...definitionOf(row) };
  if (patch.alerts === null) {
    delete base.alerts; // null removes them
    delete given.alerts;
  }
  const merged = JobDefinition.parse({ ...base, ...given });
  const updated = await updateJob(database(env.DB), id, checked(env, merged), Date.now());
  if (!updated) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  return armJob(env, updated);
}

/** Deletes a job: its pending runs never start, its alarm is gone; a running run still finishes. */
export async function removeJob(env: Env, id: string): Promise<void> {
  const db = database(env.DB);
  const row = await deleteJob(db, id);
  if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  await cancelPendingRunsOfJob(db, id, Date.now());
  await forgetJobStats(db, id);
  await jobObject(env, id).remove();
}

/** Hands the job's new version to its JobObject and returns the row with the state it decided (e.g. finished). */
export async function armJob<T extends JobRow>(env: Env, row: T): Promise<T> {
  const schedule = await jobObject(env, row.id).sync(row);
  return { ...row, state: schedule.state };
}

/** Loads a job or throws the API's 404. */
export async function requireJob(env: Env, id: string): Promise<JobView> {
  const row = await getJob(database(env.DB), id);
  if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  return row;
}

/** Pauses or resumes a job (a change, so its version is bumped); resuming computes the next fire from now. */
export async function setJobPaused(env: Env, id: string, paused: boolean): Promise<JobView> {
  const row = await requireJob(env, id);
  const updated = await updateJob(database(env.DB), id, { ...definitionOf(row), paused }, Date.now());
  if (!updated) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  return armJob(env, updated);
}

/** Starts a run of the job now, subject to max_instances (409 when they are all in flight). */
export async function runJobNow(env: Env, id: string, requestId: string | null): Promise<RunRow> {
  const row = await requireJob(env, id);
  const stub = jobObject(env, id);
  // RPC types cannot express the run's JSON columns; the shape is RunNowResult.
  let result = (await stub.runNow(requestId)) as unknown as RunNowResult;
  if (!result.run && result.reason === "not_found") {
    await stub.sync(row); // the JobObject lost its state (or never had it): heal, then try once more
    result = (await stub.runNow(requestId)) as unknown as RunNowResult;
  }
  if (!result.run) {
    throw new ApiError("conflict", `max_instances (${row.maxInstances}) runs of this job are in flight`, { in_flight: result.inFlight });
  }
  return result.run;
}
