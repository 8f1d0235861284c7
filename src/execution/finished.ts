import type { Env } from "../env";
import { jobObject } from "../jobs/present";
import { createRun } from "../runs/create";
import { toRun } from "../runs/schema";
import type { RunRow } from "../runs/store";
import type { HttpTarget } from "./target-schema";

const DEFAULT_CALLBACK_TIMEOUT_SECONDS = 30;

/** The callback a finished run asks for, if any: `callback` on success, `failure_callback` on failed or dead. */
function callbackFor(run: RunRow): HttpTarget | undefined {
  if (run.status === "succeeded") return (run.callback ?? undefined) as HttpTarget | undefined;
  if (run.status === "failed" || run.status === "dead") return (run.failureCallback ?? undefined) as HttpTarget | undefined;
  return undefined;
}

/**
 * Delivers a finished run's callback as a run of its own (signed, retried,
 * visible). The idempotency key makes a repeated finish notification create
 * no second callback.
 */
async function sendCallback(env: Env, run: RunRow): Promise<void> {
  const callback = callbackFor(run);
  if (!callback) return;
  await createRun(env, {
    target: { ...callback, body: { event: `run.${run.status}`, run: toRun(run) } },
    dueAt: Date.now(),
    priority: run.priority === "high" ? "high" : "default",
    retry: undefined,
    timeoutSeconds: callback.timeout ?? DEFAULT_CALLBACK_TIMEOUT_SECONDS,
    requestId: run.requestId,
    parentRunId: run.id,
    idempotencyKey: `callback:${run.id}`,
  });
}

/** Follow-up once a run reaches a final status: frees its job's in-flight slot, tells its JobObject, sends callbacks. */
export async function onRunFinished(env: Env, run: RunRow): Promise<void> {
  const tasks: Promise<unknown>[] = [sendCallback(env, run)];
  if (run.jobId && !run.jobId.startsWith("static:") && !run.parentRunId) {
    tasks.push(jobObject(env, run.jobId).runFinished(run.id, run.status, run.finishedAt ?? Date.now()));
  }
  await Promise.all(tasks);
}
