import { createRoute, z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { readConfig, type Env } from "../env";
import { ApiError, toApiError, zodDetails } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { openApiApp } from "../http/openapi-app";
import { createRun } from "../runs/create";
import { Run, toRun } from "../runs/schema";
import { getRun } from "../runs/store";
import { errorResponses, ErrorEnvelope } from "../schemas/common";
import { DEFAULT_TIMEOUT_SECONDS, IdempotencyHeaders, TaskBatchItem, TaskBatchRequest, TaskBatchResponse, TaskRequest } from "./schema";

const enqueueTask = createRoute({
  method: "post",
  path: "/tasks",
  tags: ["tasks"],
  summary: "Enqueue a background task",
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { "application/json": { schema: TaskRequest } } },
  },
  responses: {
    202: { description: "Accepted: the task's run", content: { "application/json": { schema: Run } } },
    ...errorResponses,
  },
});

const getTask = createRoute({
  method: "get",
  path: "/tasks/{id}",
  tags: ["tasks"],
  summary: "A task's run",
  request: { params: z.object({ id: z.string().min(1).max(200) }) },
  responses: {
    200: { description: "The task's run", content: { "application/json": { schema: Run } } },
    404: { description: "No such task", content: { "application/json": { schema: ErrorEnvelope } } },
    ...errorResponses,
  },
});

/** Validates a task's target and creates its run: the one path for single and bulk enqueues. */
async function enqueue(env: Env, body: TaskRequest, idempotencyKey: string | undefined, requestId: string) {
  const target = validateTarget(body.target, readConfig(env));
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
    },
    now,
  );
}

const enqueueBatch = createRoute({
  method: "post",
  path: "/tasks/batch",
  tags: ["tasks"],
  summary: "Enqueue up to 100 tasks; each is validated on its own",
  request: { body: { required: true, content: { "application/json": { schema: TaskBatchRequest } } } },
  responses: {
    200: { description: "One item per task, in order: 202 with its run, or a 4xx error", content: { "application/json": { schema: TaskBatchResponse } } },
    ...errorResponses,
  },
});

/** Ad-hoc background work: a run with no job. */
export const taskRoutes = openApiApp()
  .openapi(enqueueTask, async (c) => {
    const { run, created } = await enqueue(c.env, c.req.valid("json"), c.req.valid("header")["idempotency-key"], c.get("requestId"));
    if (!created) c.header("idempotent-replayed", "true");
    c.header("location", `/v1/tasks/${run.id}`);
    return c.json(toRun(run), 202);
  })
  .openapi(enqueueBatch, async (c) => {
    const { tasks } = c.req.valid("json");
    const requestId = c.get("requestId");
    const items = await Promise.all(
      tasks.map(async (item, index) => {
        const parsed = TaskBatchItem.safeParse(item);
        try {
          if (!parsed.success) throw new ApiError("validation_failed", "Invalid task", zodDetails(parsed.error));
          const { idempotency_key: key, ...task } = parsed.data;
          const { run } = await enqueue(c.env, task, key, requestId);
          return { index, status: 202, run: toRun(run) };
        } catch (error) {
          const apiError = toApiError(error);
          if (apiError.status >= 500) throw error;
          return { index, status: apiError.status, error: { code: apiError.code, message: apiError.message, details: apiError.details } };
        }
      }),
    );
    return c.json({ items }, 200);
  })
  .openapi(getTask, async (c) => {
    const run = await getRun(database(c.env.DB), c.req.valid("param").id);
    if (!run || run.jobId !== null) throw new ApiError("not_found", "No such task");
    return c.json(toRun(run), 200);
  });
