import { createRoute, z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { ApiError } from "../errors";
import { onRunFinished } from "../execution/finished";
import { openApiApp } from "../http/openapi-app";
import { ErrorEnvelope, errorResponses } from "../schemas/common";
import { createRun } from "./create";
import { listRuns } from "./queries";
import { Run, RunList, RunListQuery, toRun } from "./schema";
import { cancelRun, getRun } from "./store";
import type { Target } from "../execution/target-schema";
import type { Priority, RetryPolicy } from "../execution/target-schema";

const RunId = z.object({ id: z.string().min(1).max(200) });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const notFound = { 404: json(ErrorEnvelope, "No such run") };
const conflict = { 409: json(ErrorEnvelope, "The run's status does not allow this") };

const list = createRoute({
  method: "get",
  path: "/runs",
  tags: ["runs"],
  summary: "List runs (newest first)",
  request: { query: RunListQuery },
  responses: { 200: json(RunList, "A page of runs"), ...errorResponses },
});
const get = createRoute({
  method: "get",
  path: "/runs/{id}",
  tags: ["runs"],
  summary: "One run",
  request: { params: RunId },
  responses: { 200: json(Run, "The run"), ...notFound, ...errorResponses },
});
const cancel = createRoute({
  method: "post",
  path: "/runs/{id}/cancel",
  tags: ["runs"],
  summary: "Cancel a run that has not finished",
  description: "A waiting run never starts; a running one is marked cancelled and its result ignored.",
  request: { params: RunId },
  responses: { 200: json(Run, "The cancelled run"), ...notFound, ...conflict, ...errorResponses },
});
const retry = createRoute({
  method: "post",
  path: "/runs/{id}/retry",
  tags: ["runs"],
  summary: "Run a failed or dead run again, as a new run",
  request: { params: RunId },
  responses: { 202: json(Run, "The new run (retry_of names the old one)"), ...notFound, ...conflict, ...errorResponses },
});

/** Run history and the cancel/retry actions. */
export const runRoutes = openApiApp()
  .openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await listRuns(database(c.env.DB), {
      status: q.status,
      jobId: q.job_id,
      since: q.since === undefined ? undefined : Date.parse(q.since),
      until: q.until === undefined ? undefined : Date.parse(q.until),
      cursor: q.cursor,
      limit: q.limit,
    });
    return c.json({ items: page.items.map(toRun), next_cursor: page.nextCursor }, 200);
  })
  .openapi(get, async (c) => {
    const run = await getRun(database(c.env.DB), c.req.valid("param").id);
    if (!run) throw new ApiError("not_found", "No such run");
    return c.json(toRun(run), 200);
  })
  .openapi(cancel, async (c) => {
    const db = database(c.env.DB);
    const id = c.req.valid("param").id;
    const cancelled = await cancelRun(db, id, Date.now());
    if (cancelled) {
      await onRunFinished(c.env, cancelled);
      return c.json(toRun(cancelled), 200);
    }
    const run = await getRun(db, id);
    if (!run) throw new ApiError("not_found", "No such run");
    throw new ApiError("conflict", `Run is ${run.status} and can no longer be cancelled`, { status: run.status });
  })
  .openapi(retry, async (c) => {
    const old = await getRun(database(c.env.DB), c.req.valid("param").id);
    if (!old) throw new ApiError("not_found", "No such run");
    if (old.status !== "failed" && old.status !== "dead") {
      throw new ApiError("conflict", `Only failed or dead runs can be retried; this one is ${old.status}`, { status: old.status });
    }
    const { run } = await createRun(c.env, {
      target: old.target as Target,
      dueAt: Date.now(),
      priority: old.priority as Priority,
      retry: (old.retry ?? undefined) as RetryPolicy | undefined,
      timeoutSeconds: old.timeout,
      requestId: c.get("requestId"),
      jobId: old.jobId,
      jobVersion: old.jobVersion,
      retryOf: old.id,
      // A double-clicked retry returns the same new run instead of starting two.
      idempotencyKey: `retry-of:${old.id}`,
    });
    return c.json(toRun(run), 202);
  });
