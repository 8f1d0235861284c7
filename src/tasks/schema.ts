import { z } from "@hono/zod-openapi";
import { Priority, RetryPolicy, Target, Timeout } from "../execution/target-schema";

/** Longest a task may be deferred: one year. */
const MAX_DEFER_SECONDS = 365 * 86_400;

/** Body of `POST /v1/tasks`: a target plus when and how to run it. */
export const TaskRequest = z
  .object({
    target: Target,
    delay: z.number().min(0).max(MAX_DEFER_SECONDS).optional().openapi({ description: "Seconds to wait before running" }),
    run_at: z.string().datetime({ offset: true }).optional().openapi({ description: "Run at this instant instead" }),
    priority: Priority.default("default"),
    retry: RetryPolicy.optional(),
    timeout: Timeout.optional(),
  })
  .strict()
  .refine((t) => t.delay === undefined || t.run_at === undefined, { message: "give delay or run_at, not both", path: ["run_at"] })
  .openapi("TaskRequest");

export type TaskRequest = z.infer<typeof TaskRequest>;

export const IdempotencyHeaders = z.object({
  "idempotency-key": z.string().min(1).max(200).optional().openapi({ description: "The same key returns the same run" }),
});

/** Default attempt timeout, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 30;
