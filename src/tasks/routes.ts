import { createRoute, z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { readConfig } from "../env";
import { ApiError } from "../errors";
import { validateTarget } from "../execution/validate-target";
import { openApiApp } from "../http/openapi-app";
import { createRun } from "../runs/create";
import { Run, toRun } from "../runs/schema";
import { getRun } from "../runs/store";
import { errorResponses, ErrorEnvelope } from "../schemas/common";
import { DEFAULT_TIMEOUT_SECONDS, IdempotencyHeaders, TaskRequest } from "./schema";

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

/** Ad-hoc background work: a run with no job. */
export const taskRoutes = openApiApp()
  .openapi(enqueueTask, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const target = validateTarget(body.target, readConfig(c.env));
    const now = Date.now();
    const dueAt = body.run_at !== undefined ? Date.parse(body.run_at) : now + Math.round((body.delay ?? 0) * 1000);
    const { run, created } = await createRun(
      c.env,
      {
        target,
        dueAt,
        priority: body.priority,
        retry: body.retry,
        timeoutSeconds: body.timeout ?? target.timeout ?? DEFAULT_TIMEOUT_SECONDS,
        requestId: c.get("requestId"),
        idempotencyKey: key,
      },
      now,
    );
    if (!created) c.header("idempotent-replayed", "true");
    c.header("location", `/v1/tasks/${run.id}`);
    return c.json(toRun(run), 202);
  })
  .openapi(getTask, async (c) => {
    const run = await getRun(database(c.env.DB), c.req.valid("param").id);
    if (!run || run.jobId !== null) throw new ApiError("not_found", "No such task");
    return c.json(toRun(run), 200);
  });
