import { database } from "../db/client";
import type { Env } from "../env";
import { ApiError } from "../errors";
import type { RunRow } from "../runs/store";
import type { RunNowResult } from "../scheduling/job-object";
import { jobObject } from "./present";
import { definitionOf, getJob, updateJob, type JobRow } from "./store";

/** Hands the job's new version to its JobObject and returns the row with the schedule it set. */
export async function armJob(env: Env, row: JobRow): Promise<JobRow> {
  const schedule = await jobObject(env, row.id).sync(row);
  return { ...row, nextRunAt: schedule.nextRunAt, state: schedule.state };
}

/** Loads a job or throws the API's 404. */
export async function requireJob(env: Env, id: string): Promise<JobRow> {
  const row = await getJob(database(env.DB), id);
  if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  return row;
}

/** Pauses or resumes a job (a change, so its version is bumped); resuming computes the next fire from now. */
export async function setJobPaused(env: Env, id: string, paused: boolean): Promise<JobRow> {
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
