import { database } from "../db/client";
import { type Env, readConfig } from "../env";
import { ApiError } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { newId } from "../ids";
import { sendFirstMessage } from "../runs/service";
import type { RunRow } from "../runs/store";
import type { RunNowResult } from "../scheduling/job-object";
import { etagOf, satisfies, type VersionCondition } from "./etag";
import { jobObject } from "./present";
import { JobDefinition, type JobPatch } from "./schema";
import { definitionOf, deleteJobAndPendingRuns, getJob, insertJob, type JobRow, type JobView, updateJob, upsertJob } from "./store";

/**
 * What the jobs API does, callable from HTTP routes, the dashboard and the
 * service-binding RPC alike: definitions in D1, clocks and locks in JobObjects.
 */

/** Checks what the schema cannot: the handler and SSRF rules of the target and of the alerts' target. */
function checked(env: Env, def: JobDefinition): JobDefinition {
  const config = readConfig(env);
  const target = validateTarget(def.target, config);
  if (!def.alerts) return { ...def, target };
  const alertTarget = validateTarget(def.alerts.target, config, "alerts.target") as typeof def.alerts.target;
  return { ...def, target, alerts: { ...def.alerts, target: alertTarget } };
}

/** Creates a job; 409 if the id exists (APScheduler's ConflictingIdError). */
export async function createJob(env: Env, id: string | undefined, def: JobDefinition): Promise<JobView> {
  const jobId = id ?? newId("job");
  const row = await insertJob(database(env.DB), jobId, checked(env, def), Date.now());
  if (!row) throw new ApiError("conflict", `A job with id ${JSON.stringify(jobId)} exists; use PUT to replace it`, { id: jobId });
  return armJob(env, row);
}

/**
 * Creates or replaces a job (PUT). Without a condition it is an unconditional create-or-replace;
 * with If-Match it replaces only the version the caller named (412 otherwise, or when there is no job).
 */
export async function putJob(
  env: Env,
  id: string,
  def: JobDefinition,
  condition?: VersionCondition,
): Promise<{ row: JobView; created: boolean }> {
  if (condition !== undefined) return { row: await rewriteJob(env, id, condition, () => def), created: false };
  const { row, created } = await upsertJob(database(env.DB), id, checked(env, def), Date.now());
  return { row: await armJob(env, row), created };
}

/** Applies a partial change; a new trigger reschedules from now. Fields the patch does not name keep their newest value. */
export async function patchJob(env: Env, id: string, patch: JobPatch, condition?: VersionCondition): Promise<JobView> {
  const given: Record<string, unknown> = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  if (patch.alerts === null) delete given.alerts; // null removes them
  return rewriteJob(env, id, condition, (current) => {
    const base: Record<string, unknown> = { ...current };
    if (patch.alerts === null) delete base.alerts;
    return JobDefinition.parse({ ...base, ...given });
  });
}

/** How many times a change without If-Match is re-applied after losing the race to another write. */
const WRITE_TRIES = 5;

/**
 * Reads the job, computes its new definition from what it read, and writes it only if the job
 * is still at the version read (a concurrent PATCH must not undo a pause that landed meanwhile).
 * When another write landed first, the change is re-applied to the newer version; with a
 * condition (If-Match) the newer version must satisfy it too, so an If-Match naming the version
 * read is answered 412.
 */
async function rewriteJob(
  env: Env,
  id: string,
  condition: VersionCondition | undefined,
  change: (current: JobDefinition) => JobDefinition,
): Promise<JobView> {
  const db = database(env.DB);
  for (let attempt = 1; ; attempt++) {
    const row = await getJob(db, id);
    if (condition !== undefined) requireCondition(id, row, condition);
    if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
    const updated = await updateJob(db, id, checked(env, change(definitionOf(row))), Date.now(), row.version);
    if (updated) return armJob(env, updated);
    if (attempt >= WRITE_TRIES) {
      throw new ApiError("conflict", `Job ${JSON.stringify(id)} kept changing while this change was applied; try again`, {
        tries: attempt,
      });
    }
  }
}

/** Throws 412 unless the job exists at a version the condition accepts (If-Match on no job fails, RFC 9110). */
function requireCondition(id: string, row: JobView | undefined, condition: VersionCondition): void {
  if (satisfies(condition, row?.version)) return;
  if (!row)
    throw new ApiError("precondition_failed", `No job ${JSON.stringify(id)}; If-Match needs an existing job`, { current_version: null });
  throw new ApiError(
    "precondition_failed",
    `Job ${JSON.stringify(id)} is at version ${row.version}, not one this write expected (If-Match)`,
    { current_version: row.version, etag: etagOf(row.version) },
    { ETag: etagOf(row.version) },
  );
}

/**
 * Deletes a job: its JobObject first (from then on it fires nothing for it and refuses its
 * versions), then its row and its pending runs in one D1 batch; a running run still finishes.
 * Repeated after a failure at any step, it finishes the deletion (the JobObject step is idempotent).
 * With a condition (If-Match), only a job at a version it accepts is deleted (412 otherwise).
 */
export async function removeJob(env: Env, id: string, condition?: VersionCondition): Promise<void> {
  const db = database(env.DB);
  const row = await getJob(db, id);
  if (condition !== undefined) requireCondition(id, row, condition);
  if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  await jobObject(env, id).remove(row.createdAt);
  await deleteJobAndPendingRuns(db, row, Date.now());
}

/** Hands the job's new version to its JobObject and returns the row with the state it decided (e.g. finished). */
export async function armJob<T extends JobRow>(env: Env, row: T): Promise<T> {
  const schedule = await jobObject(env, row.id).sync(row);
  // The job was deleted while this change was being made: the deletion wins.
  if (schedule.state === "deleted") throw new ApiError("not_found", `No job ${JSON.stringify(row.id)}`);
  return { ...row, state: schedule.state };
}

/** Loads a job or throws the API's 404. */
export async function requireJob(env: Env, id: string): Promise<JobView> {
  const row = await getJob(database(env.DB), id);
  if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  return row;
}

/** Pauses or resumes a job (a change, so its version is bumped); resuming computes the next fire from now. */
export async function setJobPaused(env: Env, id: string, paused: boolean, condition?: VersionCondition): Promise<JobView> {
  return rewriteJob(env, id, condition, (current) => ({ ...current, paused }));
}

/** Starts a run of the job now, subject to max_instances (409 when they are all in flight). */
export async function runJobNow(env: Env, id: string, requestId: string | null): Promise<RunRow> {
  const row = await requireJob(env, id);
  const stub = jobObject(env, id);
  // RPC types cannot express the run's JSON columns; the shape is RunNowResult.
  let result = (await stub.runNow(requestId)) as unknown as RunNowResult;
  if (!result.run && result.reason === "not_found") {
    await armJob(env, row); // the JobObject never had this job's state: give it, then try once more
    result = (await stub.runNow(requestId)) as unknown as RunNowResult;
  }
  if (!result.run && result.reason === "not_found") throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
  if (!result.run) {
    throw new ApiError("conflict", `max_instances (${row.maxInstances}) runs of this job are in flight`, { in_flight: result.inFlight });
  }
  await sendFirstMessage(env, result.run);
  return result.run;
}
