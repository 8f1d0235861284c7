import { z } from "@hono/zod-openapi";
import { database } from "../db/client";
import type { Env } from "../env";
import { openApiApp } from "../http/openapi-app";
import { listRuns } from "../runs/listing";
import { Run, RunList, toRun } from "../runs/schema";
import { apiRoute, documentedError, jsonResponse as json, jsonBody } from "../schemas/common";
import { etagOf, parseIfMatch } from "./etag";
import { jobObject, toJob } from "./present";
import { IfMatchHeader, Job, JobCreate, JobDefinition, JobId, JobList, JobListQuery, JobPatch } from "./schema";
import { createJob, patchJob, putJob, removeJob, requireJob, runJobNow, setJobPaused } from "./service";
import { type JobView, listJobs } from "./store";

const IdParam = z.object({ id: JobId });
const notFound = { 404: documentedError("No such job") };
const conflict = (description: string) => ({ 409: documentedError(description) });
const preconditionFailed = { 412: documentedError("If-Match does not name the job's current ETag") };
// A job's ETag is its version: a write may name the version it read (If-Match), and is refused when the job has moved on.
const etagHeader = { ETag: { description: "The job's version, for If-Match", schema: { type: "string" } } } as const;
const jobAnswer = (description: string) => ({ ...json(Job, description), headers: etagHeader });
/** The ETag header of a response that returns one job. */
const etag = (row: { version: number }) => ({ ETag: etagOf(row.version) });

const routes = {
  create: apiRoute({
    method: "post",
    path: "/jobs",
    tags: ["jobs"],
    summary: "Create a job (409 if the id exists)",
    request: { body: jsonBody(JobCreate) },
    responses: { 201: jobAnswer("The job"), ...conflict("A job with this id exists; PUT replaces it") },
  }),
  put: apiRoute({
    method: "put",
    path: "/jobs/{id}",
    tags: ["jobs"],
    summary: "Create or replace a job",
    request: { params: IdParam, headers: IfMatchHeader, body: jsonBody(JobDefinition) },
    responses: { 200: jobAnswer("Replaced"), 201: jobAnswer("Created"), ...preconditionFailed },
  }),
  list: apiRoute({
    method: "get",
    path: "/jobs",
    tags: ["jobs"],
    summary: "List jobs",
    request: { query: JobListQuery },
    responses: { 200: json(JobList, "A page of jobs") },
  }),
  get: apiRoute({
    method: "get",
    path: "/jobs/{id}",
    tags: ["jobs"],
    summary: "A job with its next five fire times",
    request: { params: IdParam },
    responses: { 200: jobAnswer("The job"), ...notFound },
  }),
  patch: apiRoute({
    method: "patch",
    path: "/jobs/{id}",
    tags: ["jobs"],
    summary: "Modify or reschedule a job",
    request: { params: IdParam, headers: IfMatchHeader, body: jsonBody(JobPatch) },
    responses: {
      200: jobAnswer("The job"),
      ...notFound,
      ...preconditionFailed,
      ...conflict("The job kept changing while this change was applied; try again"),
    },
  }),
  delete: apiRoute({
    method: "delete",
    path: "/jobs/{id}",
    tags: ["jobs"],
    summary: "Delete a job, its alarm and its pending runs",
    request: { params: IdParam, headers: IfMatchHeader },
    responses: { 204: { description: "Deleted" }, ...notFound, ...preconditionFailed },
  }),
  pause: apiRoute({
    method: "post",
    path: "/jobs/{id}/pause",
    tags: ["jobs"],
    summary: "Pause a job",
    request: { params: IdParam, headers: IfMatchHeader },
    responses: {
      200: jobAnswer("The job"),
      ...notFound,
      ...preconditionFailed,
      ...conflict("The job kept changing while this change was applied; try again"),
    },
  }),
  resume: apiRoute({
    method: "post",
    path: "/jobs/{id}/resume",
    tags: ["jobs"],
    summary: "Resume a job from now (paused fires are not replayed)",
    request: { params: IdParam, headers: IfMatchHeader },
    responses: {
      200: jobAnswer("The job"),
      ...notFound,
      ...preconditionFailed,
      ...conflict("The job kept changing while this change was applied; try again"),
    },
  }),
  run: apiRoute({
    method: "post",
    path: "/jobs/{id}/run",
    tags: ["jobs"],
    summary: "Run a job now, subject to max_instances",
    request: { params: IdParam },
    responses: { 202: json(Run, "The new run"), ...notFound, ...conflict("max_instances runs of this job are in flight") },
  }),
  runs: apiRoute({
    method: "get",
    path: "/jobs/{id}/runs",
    tags: ["jobs"],
    summary: "A job's runs, newest first",
    request: {
      params: IdParam,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(200).optional() }),
    },
    responses: { 200: json(RunList, "A page of runs"), ...notFound },
  }),
};

/** A job with its latest run's due time as its JobObject knows it now (D1 holds it as of the last statistics flush). */
async function withLastRun(env: Env, row: JobView): Promise<JobView> {
  const latest = await jobObject(env, row.id).lastRunAt(row.id);
  return latest === null || (row.lastRunAt !== null && row.lastRunAt >= latest) ? row : { ...row, lastRunAt: latest };
}

/** The jobs API: definitions in D1, clocks and locks in each job's JobObject. */
export const jobRoutes = openApiApp()
  .openapi(routes.create, async (c) => {
    const { id, ...def } = c.req.valid("json");
    const row = await createJob(c.env, id, def);
    return c.json(toJob(row, true), 201, etag(row));
  })
  .openapi(routes.put, async (c) => {
    const condition = parseIfMatch(c.req.valid("header")["if-match"]);
    const { row, created } = await putJob(c.env, c.req.valid("param").id, c.req.valid("json"), condition);
    return c.json(toJob(row, true), created ? 201 : 200, etag(row));
  })
  .openapi(routes.list, async (c) => {
    const q = c.req.valid("query");
    const page = await listJobs(database(c.env.DB), q);
    return c.json({ items: page.items.map((row) => toJob(row)), next_cursor: page.nextCursor }, 200);
  })
  .openapi(routes.get, async (c) => {
    const row = await withLastRun(c.env, await requireJob(c.env, c.req.valid("param").id));
    return c.json(toJob(row, true), 200, etag(row));
  })
  .openapi(routes.patch, async (c) => {
    const condition = parseIfMatch(c.req.valid("header")["if-match"]);
    const row = await patchJob(c.env, c.req.valid("param").id, c.req.valid("json"), condition);
    return c.json(toJob(row, true), 200, etag(row));
  })
  .openapi(routes.delete, async (c) => {
    await removeJob(c.env, c.req.valid("param").id, parseIfMatch(c.req.valid("header")["if-match"]));
    return c.body(null, 204);
  })
  .openapi(routes.pause, async (c) => {
    const row = await setJobPaused(c.env, c.req.valid("param").id, true, parseIfMatch(c.req.valid("header")["if-match"]));
    return c.json(toJob(row, true), 200, etag(row));
  })
  .openapi(routes.resume, async (c) => {
    const row = await setJobPaused(c.env, c.req.valid("param").id, false, parseIfMatch(c.req.valid("header")["if-match"]));
    return c.json(toJob(row, true), 200, etag(row));
  })
  .openapi(routes.run, async (c) => c.json(toRun(await runJobNow(c.env, c.req.valid("param").id, c.get("requestId"))), 202))
  .openapi(routes.runs, async (c) => {
    const id = c.req.valid("param").id;
    await requireJob(c.env, id);
    const q = c.req.valid("query");
    const page = await listRuns(c.env, { jobId: id, cursor: q.cursor, limit: q.limit });
    return c.json({ items: page.items, next_cursor: page.nextCursor }, 200);
  });
