import { database } from "../db/client";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { dispatchRun } from "../execution/dispatch";
import { onRunFinished } from "../execution/finished";
import { ownerFor } from "../execution/run-io";
import { ownerOfRun, shardOfKey } from "../ids";
import { jobObject } from "../jobs/present";
import { log } from "../log";
import { taskShard } from "../tasks/shards";
import { taskShardCount } from "./create";
import { cancelRun, getRun, type RunRow } from "./store";

/**
 * Run lookups and actions, by the owner a run's id names: its job's JobObject, a task
 * shard, or D1 for runs written before runs moved to their owners.
 */

/** Loads a run from its owner; undefined when there is no such run. */
export async function findRun(env: Env, id: string): Promise<RunRow | undefined> {
  const owner = ownerFor(env, id);
  if (owner) return (await owner.calls.getRuns(owner.key, [id]))[0] ?? undefined;
  return ownerOfRun(id)?.kind === "legacy" ? getRun(database(env.DB), id) : undefined;
}

/** Loads a run or throws the API's 404. */
export async function requireRun(env: Env, id: string): Promise<RunRow> {
  const run = await findRun(env, id);
  if (!run) throw new ApiError("not_found", "No such run");
  return run;
}

/** Cancels a run that has not finished; 409 once it is final. */
export async function cancelRunById(env: Env, id: string): Promise<RunRow> {
  const owner = ownerFor(env, id);
  const now = Date.now();
  let cancelled: RunRow | null | undefined;
  if (owner) cancelled = await owner.calls.cancelRun(owner.key, id, now);
  else if (ownerOfRun(id)?.kind === "legacy") {
    cancelled = await cancelRun(database(env.DB), id, now);
    if (cancelled) await onRunFinished(env, cancelled);
  }
  if (cancelled) return cancelled;
  const run = await requireRun(env, id);
  throw new ApiError("conflict", `Run is ${run.status} and can no longer be cancelled`, { status: run.status });
}

/**
 * Runs a failed or dead run again as a new run of the same owner (new id, so receivers see a
 * new webhook-id). While its latest retry is still pending, asking again returns that retry (a
 * double click starts one run); once it has finished, however it ended, asking again starts another.
 */
export async function retryRunById(env: Env, id: string, requestId: string | null): Promise<RunRow> {
  const ref = ownerOfRun(id);
  // A run D1 keeps is retried by the owner it would have today: its job, or a task shard.
  const legacy = ref?.kind === "legacy" ? await requireRun(env, id) : undefined;
  const jobId =
    ref?.kind === "job"
      ? ref.jobId
      : legacy?.jobId && !legacy.jobId.startsWith("static:") && !legacy.parentRunId
        ? legacy.jobId
        : undefined;
  // A D1 task's retries live in the shard its first retry's key hashes to, so a double click finds them.
  const shard = ref?.kind === "shard" ? ref.shard : shardOfKey(`retry-of:${id}`, taskShardCount(env));
  const result = (
    jobId !== undefined
      ? await jobObject(env, jobId).retryRun(jobId, id, requestId, legacy)
      : ref === undefined
        ? { run: null, reason: "not_found" }
        : await taskShard(env, shard).retryRun(String(shard), id, requestId, legacy)
  ) as { run: RunRow | null; created?: boolean; reason?: string };
  if (result.run) {
    if (result.created) await sendFirstMessage(env, result.run);
    return result.run;
  }
  if (result.reason === "not_found") throw new ApiError("not_found", "No such run");
  throw new ApiError("conflict", `Only failed or dead runs can be retried; this one is ${result.reason}`, { status: result.reason });
}

/** Sends a new run's first message; if it cannot, its owner's upkeep re-sends it once it is overdue. */
export async function sendFirstMessage(env: Env, run: RunRow): Promise<void> {
  try {
    await dispatchRun(env, run, Date.now());
  } catch (error) {
    log("error", "dispatch_failed", { run_ids: [run.id], error: error instanceof Error ? error.message : String(error) });
  }
}
