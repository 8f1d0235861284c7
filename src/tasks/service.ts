import { type Config, type Env, readConfig } from "../env";
import { ApiError, toApiError, zodDetails, zodSummary } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { log } from "../log";
import { createRun, createRuns, type RunSpec } from "../runs/create";
import { runTimeoutSeconds } from "../runs/run-timeout";
import { type Run, toRun } from "../runs/schema";
import type { RunRow } from "../runs/store";
import { TaskBatchItem, type TaskRequest } from "./schema";

/** Validates a task's target and creates its run: the one path for HTTP, bulk and RPC enqueues. */
export async function enqueueTask(
  env: Env,
  body: TaskRequest,
  idempotencyKey: string | undefined,
  requestId: string | null,
): Promise<{ run: RunRow; created: boolean }> {
  const now = Date.now();
  return createRun(env, taskRunSpec(readConfig(env), body, idempotencyKey, requestId, now));
}

/** The run a task asks for; throws the API error of an unacceptable target. */
function taskRunSpec(
  config: Config,
  body: TaskRequest,
  idempotencyKey: string | undefined,
  requestId: string | null,
  now: number,
): RunSpec {
  const target = validateTarget(body.target, config);
  // Callbacks are outbound requests too: the same SSRF rules apply, at enqueue time.
  const callback = body.callback && (validateTarget(body.callback, config, "callback") as typeof body.callback);
  const failureCallback =
    body.failure_callback && (validateTarget(body.failure_callback, config, "failure_callback") as typeof body.failure_callback);
  const dueAt = body.run_at !== undefined ? Date.parse(body.run_at) : now + Math.round((body.delay ?? 0) * 1000);
  return {
    target,
    dueAt,
    priority: body.priority,
    retry: body.retry,
    timeoutSeconds: runTimeoutSeconds(target, body.timeout),
    requestId,
    idempotencyKey,
    expiresAt: body.expires_at === undefined ? null : Date.parse(body.expires_at),
    callback: callback ?? null,
    failureCallback: failureCallback ?? null,
  };
}

export type BatchItemResult =
  | { index: number; status: 202; run: Run }
  | { index: number; status: number; error: { code: string; message: string; details?: unknown } };

/**
 * Validates each item on its own, so one bad task does not sink the rest,
 * then creates the valid ones together (one D1 round trip, one send per
 * queue). One result per item, in order.
 */
export async function enqueueTaskBatch(env: Env, items: unknown[], requestId: string | null): Promise<BatchItemResult[]> {
  const now = Date.now();
  const config = readConfig(env);
  const results: BatchItemResult[] = [];
  const accepted: { index: number; spec: RunSpec }[] = [];
  items.forEach((item, index) => {
    const parsed = TaskBatchItem.safeParse(item);
    try {
      if (!parsed.success) throw new ApiError("validation_failed", `Invalid task: ${zodSummary(parsed.error)}`, zodDetails(parsed.error));
      const { idempotency_key: key, ...task } = parsed.data;
      accepted.push({ index, spec: taskRunSpec(config, task, key, requestId, now) });
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.status >= 500) throw error;
      results[index] = {
        index,
        status: apiError.status,
        error: { code: apiError.code, message: apiError.message, ...(apiError.details === undefined ? {} : { details: apiError.details }) },
      };
    }
  });
  const created = await createRuns(
    env,
    accepted.map((a) => a.spec),
  );
  accepted.forEach(({ index }, i) => {
    const outcome = created[i];
    if (!outcome) return;
    if ("run" in outcome) results[index] = { index, status: 202, run: toRun(outcome.run) };
    else results[index] = { index, ...insertFailure(outcome.error, index) };
  });
  return results;
}

/** Only this task failed to be written: say so for it (503 if storage failed transiently, so retry it), and keep the others. */
function insertFailure(error: unknown, index: number): { status: number; error: { code: string; message: string; details?: unknown } } {
  const apiError = toApiError(error);
  const transient = apiError.code === "unavailable";
  log(transient ? "warn" : "error", "task_insert_failed", { index, error: error instanceof Error ? error.message : String(error) });
  if (!transient) return { status: 500, error: { code: "internal_error", message: "The task could not be stored; retry it" } };
  return { status: apiError.status, error: { code: apiError.code, message: apiError.message, details: apiError.details } };
}
