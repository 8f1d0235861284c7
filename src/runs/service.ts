import { database } from "../db/client";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { onRunFinished } from "../execution/finished";
import type { HttpTarget, Priority, RetryPolicy, Target } from "../execution/target-schema";
import { createRun } from "./create";
import { cancelRun, getRun, type RunRow } from "./store";

/** Loads a run or throws the API's 404. */
export async function requireRun(env: Env, id: string): Promise<RunRow> {
  const run = await getRun(database(env.DB), id);
  if (!run) throw new ApiError("not_found", "No such run");
  return run;
}

/** Cancels a run that has not finished; 409 once it is final. */
export async function cancelRunById(env: Env, id: string): Promise<RunRow> {
  const cancelled = await cancelRun(database(env.DB), id, Date.now());
  if (cancelled) {
    await onRunFinished(env, cancelled);
    return cancelled;
  }
  const run = await requireRun(env, id);
  throw new ApiError("conflict", `Run is ${run.status} and can no longer be cancelled`, { status: run.status });
}

/** Runs a failed or dead run again as a new run (new id, so receivers see a new webhook-id). */
export async function retryRunById(env: Env, id: string, requestId: string | null): Promise<RunRow> {
  const old = await requireRun(env, id);
  if (old.status !== "failed" && old.status !== "dead") {
    throw new ApiError("conflict", `Only failed or dead runs can be retried; this one is ${old.status}`, { status: old.status });
  }
  const { run } = await createRun(env, {
    target: old.target as Target,
    dueAt: Date.now(),
    priority: old.priority as Priority,
    retry: (old.retry ?? undefined) as RetryPolicy | undefined,
    timeoutSeconds: old.timeout,
    requestId,
    jobId: old.jobId,
    jobVersion: old.jobVersion,
    retryOf: old.id,
    callback: old.callback as HttpTarget | null,
    failureCallback: old.failureCallback as HttpTarget | null,
    // A double-clicked retry returns the same new run instead of starting two.
    idempotencyKey: `retry-of:${old.id}`,
  });
  return run;
}
