import { z } from "@hono/zod-openapi";
import { openApiApp } from "../http/openapi-app";
import { apiRoute, documentedError, jsonResponse as json } from "../schemas/common";
import { listRuns } from "./listing";
import { Run, RunAttempts, RunList, RunListQuery, toRun } from "./schema";
import { cancelRunById, requireRun, retryRunById } from "./service";

const RunId = z.object({ id: z.string().min(1).max(200) });
const notFound = { 404: documentedError("No such run") };
const conflict = { 409: documentedError("The run's status does not allow this") };

const list = apiRoute({
  method: "get",
  path: "/runs",
  tags: ["runs"],
  summary: "List runs (newest first): a job's, every owner's failures, or the tasks",
  description:
    "Each run lives with its owner: a job's runs in its JobObject, tasks (with callback and alert runs) in task shards. " +
    "With `job_id`, the job's runs. With `status=failed` or `dead` and no `job_id`, the failed or dead runs of every owner, " +
    "from the failure index, newest finish first (`since`/`until` bound the finish time). Otherwise the tasks, from every shard, " +
    "newest first: a job's runs are not in this listing. Runs kept in D1 before runs moved to their owners follow, until they age out.",
  request: { query: RunListQuery },
  responses: { 200: json(RunList, "A page of runs") },
});
const get = apiRoute({
  method: "get",
  path: "/runs/{id}",
  tags: ["runs"],
  summary: "One run",
  request: { params: RunId },
  responses: { 200: json(Run, "The run"), ...notFound },
});
const cancel = apiRoute({
  method: "post",
  path: "/runs/{id}/cancel",
  tags: ["runs"],
  summary: "Cancel a run that has not finished",
  description: "A waiting run never starts; a running one is marked cancelled and its result ignored.",
  request: { params: RunId },
  responses: { 200: json(Run, "The cancelled run"), ...notFound, ...conflict },
});
const retry = apiRoute({
  method: "post",
  path: "/runs/{id}/retry",
  tags: ["runs"],
  summary: "Run a failed or dead run again, as a new run",
  request: { params: RunId },
  responses: { 202: json(Run, "The new run (retry_of names the old one)"), ...notFound, ...conflict },
});

const attempts = apiRoute({
  method: "get",
  path: "/runs/{id}/attempts",
  tags: ["runs"],
  summary: "Every finished attempt of a run: start, end, outcome, status code, error",
  request: { params: RunId },
  responses: { 200: json(RunAttempts, "The attempts, oldest first"), ...notFound },
});

/** Run history and the cancel/retry actions. */
export const runRoutes = openApiApp()
  .openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await listRuns(c.env, {
      status: q.status,
      jobId: q.job_id,
      since: q.since === undefined ? undefined : Date.parse(q.since),
      until: q.until === undefined ? undefined : Date.parse(q.until),
      cursor: q.cursor,
      limit: q.limit,
    });
    return c.json({ items: page.items, next_cursor: page.nextCursor }, 200);
  })
  .openapi(get, async (c) => c.json(toRun(await requireRun(c.env, c.req.valid("param").id)), 200))
  .openapi(attempts, async (c) => {
    const run = await requireRun(c.env, c.req.valid("param").id);
    return c.json({ run_id: run.id, items: (run.attempts ?? []) as z.infer<typeof RunAttempts>["items"] }, 200);
  })
  .openapi(cancel, async (c) => c.json(toRun(await cancelRunById(c.env, c.req.valid("param").id)), 200))
  .openapi(retry, async (c) => c.json(toRun(await retryRunById(c.env, c.req.valid("param").id, c.get("requestId"))), 202));
