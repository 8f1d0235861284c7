import { database } from "../db/client";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { onRunFinished } from "../execution/finished";
import type { HttpTarget, Priority, RetryPolicy, Target } from "../execution/target-schema";
import { createRun } from "./create";
import { runsKeyedUnder } from "./queries";
import { cancelRun, getRun, type RunRow } from "./store";
import { isFinal, type RunStatus } from "./transitions";

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

/**
 * Runs a failed or dead run again as a new run (new id, so receivers see a new webhook-id).
 * While its latest retry is still pending, asking again returns that retry (a double click
 * starts one run); once it has finished, however it ended, asking again starts another.
 */
export async function retryRunById(env: Env, id: string, requestId: string | null): Promise<RunRow> {
  const old = await requireRun(env, id);
  if (old.status !== "failed" && old.status !== "dead") {
    throw new ApiError("conflict", `Only failed or dead runs can be retried; this one is ${old.status}`, { status: old.status });
  }
  const retries = await runsKeyedUnder(database(env.DB), retryKey(old.id, 1));
  const pending = retries.find((r) => !isFinal(r.status as RunStatus));
  if (pending) return pending;
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
    // Requests that saw the same finished retries name the same next one, so concurrent clicks start one run.
    idempotencyKey: retryKey(old.id, Math.max(0, ...retries.map((r) => retryNumber(old.id, r.idempotencyKey))) + 1),
  });
  return run;
}

/** The idempotency key of the nth retry of a run: `retry-of:<id>` for the first (as keys were before), then `retry-of:<id>:<n>`. */
function retryKey(runId: string, n: number): string {
  return n === 1 ? `retry-of:${runId}` : `retry-of:${runId}:${n}`;
}

/** Which retry of `runId` a key names (0 when it names none). */
function retryNumber(runId: string, key: string | null): number {
  if (key === retryKey(runId, 1)) return 1;
  const n = Number(key?.slice(retryKey(runId, 1).length + 1));
  return Number.isInteger(n) && n > 1 ? n : 0;
}
