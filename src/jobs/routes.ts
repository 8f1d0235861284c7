import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { inArray, and, eq } from "drizzle-orm";
import { database } from "../db/client";
import { runs } from "../db/schema";
import { readConfig } from "../env";
import { ApiError } from "../errors";
import { validateTarget } from "../execution/validate-target";
import type { AppEnv } from "../http/types";
import { openApiApp } from "../http/openapi-app";
import { newId } from "../ids";
import { listRuns } from "../runs/queries";
import { Run, RunList, toRun } from "../runs/schema";
import { WAITING } from "../runs/transitions";
import { ErrorEnvelope, errorResponses } from "../schemas/common";
import { armJob, requireJob, runJobNow, setJobPaused } from "./actions";
import { jobObject, toJob } from "./present";
import { Job, JobCreate, JobDefinition, JobId, JobList, JobListQuery, JobPatch } from "./schema";
import { definitionOf, deleteJob, insertJob, listJobs, updateJob, upsertJob } from "./store";

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { "application/json": { schema } } });
const IdParam = z.object({ id: JobId });
const notFound = { 404: json(ErrorEnvelope, "No such job") };
const conflict = { 409: json(ErrorEnvelope, "Conflict") };

function checkDefinition(c: Context<AppEnv>, def: JobDefinition): JobDefinition {
  return { ...def, target: validateTarget(def.target, readConfig(c.env)) };
}

const routes = {
  create: createRoute({ method: "post", path: "/jobs", tags: ["jobs"], summary: "Create a job (409 if the id exists)", request: { body: body(JobCreate) }, responses: { 201: json(Job, "The job"), ...conflict, ...errorResponses } }),
  put: createRoute({ method: "put", path: "/jobs/{id}", tags: ["jobs"], summary: "Create or replace a job", request: { params: IdParam, body: body(JobDefinition) }, responses: { 200: json(Job, "Replaced"), 201: json(Job, "Created"), ...errorResponses } }),
  list: createRoute({ method: "get", path: "/jobs", tags: ["jobs"], summary: "List jobs", request: { query: JobListQuery }, responses: { 200: json(JobList, "A page of jobs"), ...errorResponses } }),
  get: createRoute({ method: "get", path: "/jobs/{id}", tags: ["jobs"], summary: "A job with its next five fire times", request: { params: IdParam }, responses: { 200: json(Job, "The job"), ...notFound, ...errorResponses } }),
  patch: createRoute({ method: "patch", path: "/jobs/{id}", tags: ["jobs"], summary: "Modify or reschedule a job", request: { params: IdParam, body: body(JobPatch) }, responses: { 200: json(Job, "The job"), ...notFound, ...errorResponses } }),
  delete: createRoute({ method: "delete", path: "/jobs/{id}", tags: ["jobs"], summary: "Delete a job, its alarm and its pending runs", request: { params: IdParam }, responses: { 204: { description: "Deleted" }, ...notFound, ...errorResponses } }),
  pause: createRoute({ method: "post", path: "/jobs/{id}/pause", tags: ["jobs"], summary: "Pause a job", request: { params: IdParam }, responses: { 200: json(Job, "The job"), ...notFound, ...errorResponses } }),
  resume: createRoute({ method: "post", path: "/jobs/{id}/resume", tags: ["jobs"], summary: "Resume a job from now (paused fires are not replayed)", request: { params: IdParam }, responses: { 200: json(Job, "The job"), ...notFound, ...errorResponses } }),
  run: createRoute({ method: "post", path: "/jobs/{id}/run", tags: ["jobs"], summary: "Run a job now, subject to max_instances", request: { params: IdParam }, responses: { 202: json(Run, "The new run"), ...notFound, ...conflict, ...errorResponses } }),
  runs: createRoute({ method: "get", path: "/jobs/{id}/runs", tags: ["jobs"], summary: "A job's runs, newest first", request: { params: IdParam, query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(200).optional() }) }, responses: { 200: json(RunList, "A page of runs"), ...notFound, ...errorResponses } }),
};

/** The jobs API: definitions in D1, clocks and locks in each job's JobObject. */
export const jobRoutes = openApiApp()
  .openapi(routes.create, async (c) => {
    const { id: requested, ...def } = c.req.valid("json");
    const id = requested ?? newId("job");
    const row = await insertJob(database(c.env.DB), id, checkDefinition(c, def), Date.now());
    if (!row) throw new ApiError("conflict", `A job with id ${JSON.stringify(id)} exists; use PUT to replace it`, { id });
    return c.json(toJob(await armJob(c.env, row), true), 201);
  })
  .openapi(routes.put, async (c) => {
    const id = c.req.valid("param").id;
    const { row, created } = await upsertJob(database(c.env.DB), id, checkDefinition(c, c.req.valid("json")), Date.now());
    return c.json(toJob(await armJob(c.env, row), true), created ? 201 : 200);
  })
  .openapi(routes.list, async (c) => {
    const q = c.req.valid("query");
    const page = await listJobs(database(c.env.DB), q);
    return c.json({ items: page.items.map((row) => toJob(row)), next_cursor: page.nextCursor }, 200);
  })
  .openapi(routes.get, async (c) => c.json(toJob(await requireJob(c.env, c.req.valid("param").id), true), 200))
  .openapi(routes.patch, async (c) => {
    const id = c.req.valid("param").id;
    const row = await requireJob(c.env, id);
    const patch = c.req.valid("json");
    const merged = JobDefinition.parse({ ...definitionOf(row), ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) });
    const updated = await updateJob(database(c.env.DB), id, checkDefinition(c, merged), Date.now());
    if (!updated) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
    return c.json(toJob(await armJob(c.env, updated), true), 200);
  })
  .openapi(routes.delete, async (c) => {
    const id = c.req.valid("param").id;
    const db = database(c.env.DB);
    const row = await deleteJob(db, id);
    if (!row) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
    const now = Date.now();
    // Pending runs of a deleted job never start; a running one finishes and is recorded.
    await db
      .update(runs)
      .set({ status: "cancelled", cancelRequested: true, finishedAt: now, updatedAt: now })
      .where(and(eq(runs.jobId, id), inArray(runs.status, [...WAITING])));
    await jobObject(c.env, id).remove();
    return c.body(null, 204);
  })
  .openapi(routes.pause, async (c) => c.json(toJob(await setJobPaused(c.env, c.req.valid("param").id, true), true), 200))
  .openapi(routes.resume, async (c) => c.json(toJob(await setJobPaused(c.env, c.req.valid("param").id, false), true), 200))
  .openapi(routes.run, async (c) => c.json(toRun(await runJobNow(c.env, c.req.valid("param").id, c.get("requestId"))), 202))
  .openapi(routes.runs, async (c) => {
    const id = c.req.valid("param").id;
    await requireJob(c.env, id);
    const q = c.req.valid("query");
    const page = await listRuns(database(c.env.DB), { jobId: id, cursor: q.cursor, limit: q.limit });
    return c.json({ items: page.items.map(toRun), next_cursor: page.nextCursor }, 200);
  });
