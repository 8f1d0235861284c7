import { z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { openApiApp } from "../http/openapi-app";
import { Run, toRun } from "../runs/schema";
import { findRun } from "../runs/service";
import { apiRoute, documentedError, jsonResponse as json, jsonBody } from "../schemas/common";
import { IdempotencyHeaders, TaskBatchRequest, TaskBatchResponse, TaskRequest } from "./schema";
import { enqueueTask, enqueueTaskBatch } from "./service";

const enqueueRoute = apiRoute({
  method: "post",
  path: "/tasks",
  tags: ["tasks"],
  summary: "Enqueue a background task",
  request: {
    headers: IdempotencyHeaders,
    body: jsonBody(TaskRequest),
  },
  responses: { 202: json(Run, "Accepted: the task's run") },
});

const getTask = apiRoute({
  method: "get",
  path: "/tasks/{id}",
  tags: ["tasks"],
  summary: "A task's run",
  request: { params: z.object({ id: z.string().min(1).max(200) }) },
  responses: { 200: json(Run, "The task's run"), 404: documentedError("No such task") },
});

const enqueueBatch = apiRoute({
  method: "post",
  path: "/tasks/batch",
  tags: ["tasks"],
  summary: "Enqueue up to 100 tasks; each is validated on its own",
  request: { body: jsonBody(TaskBatchRequest) },
  responses: { 200: json(TaskBatchResponse, "One item per task, in order: 202 with its run, or a 4xx error") },
});

/** Ad-hoc background work: a run with no job. */
export const taskRoutes = openApiApp()
  .openapi(enqueueRoute, async (c) => {
    const { run, created } = await enqueueTask(c.env, c.req.valid("json"), c.req.valid("header")["idempotency-key"], c.get("requestId"));
    if (!created) c.header("idempotent-replayed", "true");
    c.header("location", `/v1/tasks/${run.id}`);
    return c.json(toRun(run), 202);
  })
  .openapi(enqueueBatch, async (c) => c.json({ items: await enqueueTaskBatch(c.env, c.req.valid("json").tasks, c.get("requestId")) }, 200))
  .openapi(getTask, async (c) => {
    const run = await findRun(c.env, c.req.valid("param").id);
    if (!run || run.jobId !== null) throw new ApiError("not_found", "No such task");
    return c.json(toRun(run), 200);
  });
