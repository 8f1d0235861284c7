import { z } from "@hono/zod-openapi";
import { HttpTarget, Priority, RetryPolicy, Target, Timeout } from "../execution/target-schema";
import { Run } from "../runs/schema";
import { IsoDateTime } from "../scheduling/trigger-schema";

/** Longest a task may be deferred: one year. */
const MAX_DEFER_SECONDS = 365 * 86_400;

const taskFields = {
  target: Target,
  delay: z.number().min(0).max(MAX_DEFER_SECONDS).optional().openapi({ description: "Seconds to wait before running" }),
  run_at: IsoDateTime.optional().openapi({ description: "Run at this instant instead" }),
  priority: Priority.default("default"),
  retry: RetryPolicy.optional(),
  timeout: Timeout.optional(),
  expires_at: IsoDateTime.optional().openapi({ description: "A task not started by then ends `expired` and never runs" }),
  callback: HttpTarget.optional().openapi({ description: "Called (signed, as a run) with the run when it succeeds" }),
  failure_callback: HttpTarget.optional().openapi({ description: "Called (signed, as a run) with the run when it fails for good" }),
};
const oneStart = (t: { delay?: number; run_at?: string }) => t.delay === undefined || t.run_at === undefined;
const oneStartError = { message: "give delay or run_at, not both", path: ["run_at"] };

/** Body of `POST /v1/tasks`: a target plus when and how to run it. */
export const TaskRequest = z.object(taskFields).strict().refine(oneStart, oneStartError).openapi("TaskRequest");

/** One task of a bulk enqueue; its idempotency key travels in the body. */
export const TaskBatchItem = z
  .object({ ...taskFields, idempotency_key: z.string().min(1).max(200).optional() })
  .strict()
  .refine(oneStart, oneStartError)
  .openapi("TaskBatchItem");

/** Body of `POST /v1/tasks/batch`: items are validated one by one, so one bad task does not sink the rest. */
export const TaskBatchRequest = z
  .object({
    tasks: z
      .array(z.unknown().openapi({ description: "A TaskBatchItem; validated one by one" }))
      .min(1)
      .max(100),
  })
  .strict()
  .openapi("TaskBatchRequest");

export const TaskBatchResponse = z
  .object({
    items: z.array(
      z.object({
        index: z.number().int(),
        status: z.number().int(),
        run: Run.optional(),
        error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }).optional(),
      }),
    ),
  })
  .openapi("TaskBatchResponse");

export type TaskRequest = z.infer<typeof TaskRequest>;

export const IdempotencyHeaders = z.object({
  "idempotency-key": z.string().min(1).max(200).optional().openapi({ description: "The same key returns the same run" }),
});
