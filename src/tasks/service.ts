import { readConfig, type Env } from "../env";
import { toApiError, ApiError, zodDetails } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { createRun } from "../runs/create";
import { toRun, type Run } from "../runs/schema";
import type { RunRow } from "../runs/store";
import { DEFAULT_TIMEOUT_SECONDS, TaskBatchItem, type TaskRequest } from "./schema";

/** Validates a task's target and creates its run: the one path for HTTP, bulk and RPC enqueues. */
export async function enqueueTask(env: Env, body: TaskRequest, idempotencyKey: string | undefined, requestId: string | null): Promise<{ run: RunRow; created: boolean }> {
  const config = readConfig(env);
  const target = validateTarget(body.target, config);
  // Callbacks are outbound requests too: the same SSRF rules apply, at enqueue time.
  const callback = body.callback && (validateTarget(body.callback, config, "callback") as typeof body.callback);
  const failureCallback = body.failure_callback && (validateTarget(body.failure_callback, config, "failure_callback") as typeof body.failure_callback);
  const now = Date.now();
  const dueAt = body.run_at !== undefined ? Date.parse(body.run_at) : now + Math.round((body.delay ?? 0) * 1000);
  return createRun(
    env,
    {
      target,
      dueAt,
      priority: body.priority,
      retry: body.retry,
      timeoutSeconds: body.timeout ?? target.timeout ?? DEFAULT_TIMEOUT_SECONDS,
      requestId,
      idempotencyKey,
      expiresAt: body.expires_at === undefined ? null : Date.parse(body.expires_at),
      callback: callback ?? null,
      failureCallback: failureCallback ?? null,
    },
    now,
  );
}

export type BatchItemResult =
  | { index: number; status: 202; run: Run }
  | { index: number; status: number; error: { code: string; message: string; details?: unknown } };

/** Enqueues each item on its own, so one bad task does not sink the rest; one result per item, in order. */
export async function enqueueTaskBatch(env: Env, items: unknown[], requestId: string | null): Promise<BatchItemResult[]> {
  return Promise.all(
    items.map(async (item, index): Promise<BatchItemResult> => {
      const parsed = TaskBatchItem.safeParse(item);
      try {
        if (!parsed.success) throw new ApiError("validation_failed", "Invalid task", zodDetails(parsed.error));
        const { idempotency_key: key, ...task } = parsed.data;
        const { run } = await enqueueTask(env, task, key, requestId);
        return { index, status: 202, run: toRun(run) };
      } catch (error) {
        const apiError = toApiError(error);
        if (apiError.status >= 500) throw error;
        return { index, status: apiError.status, error: { code: apiError.code, message: apiError.message, ...(apiError.details === undefined ? {} : { details: apiError.details }) } };
      }
    }),
  );
}
