import { z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { ApiError } from "../errors";
import { openApiApp } from "../http/openapi-app";
import { jobObject } from "../jobs/present";
import { JobId } from "../jobs/schema";
import { getJob } from "../jobs/store";
import { freshenTaskStats } from "../runs/create";
import { upcomingFire } from "../scheduling/job-schedule";
import { IsoDateTime } from "../scheduling/trigger-schema";
import { apiRoute, documentedError, jsonResponse as json } from "../schemas/common";
import { combine, JobStats, presentStats, statsSince } from "./stats";

const DAY_MS = 86_400_000;
const Window = z.object({
  since: IsoDateTime.optional().openapi({ description: "Start of the window (default: 24 hours ago); counted in whole hours" }),
});
const StatsReport = z.object({ since: z.string(), overall: JobStats, jobs: z.array(JobStats) }).openapi("StatsReport");

const all = apiRoute({
  method: "get",
  path: "/stats",
  tags: ["stats"],
  summary: "Per-job and overall run statistics over a window",
  request: { query: Window },
  responses: { 200: json(StatsReport, "Statistics") },
});
const one = apiRoute({
  method: "get",
  path: "/jobs/{id}/stats",
  tags: ["stats"],
  summary: "One job's run statistics over a window",
  request: { params: z.object({ id: JobId }), query: Window },
  responses: { 200: json(JobStats, "Statistics"), 404: documentedError("No such job") },
});

const sinceOf = (since: string | undefined) => (since === undefined ? Date.now() - DAY_MS : Date.parse(since));

/** Statistics from the hourly rollups: the cost is the same for ten runs or ten million. */
export const statsRoutes = openApiApp()
  .openapi(all, async (c) => {
    const since = sinceOf(c.req.valid("query").since);
    await freshenTaskStats(c.env);
    const rows = await statsSince(database(c.env.DB), since);
    const now = Date.now();
    const jobs = rows.map((r) => presentStats(r, r.job_id === "" ? null : r.job_id, r.schedule && upcomingFire(r.schedule, now)));
    return c.json({ since: new Date(since).toISOString(), overall: { ...presentStats(combine(rows), null, null) }, jobs }, 200);
  })
  .openapi(one, async (c) => {
    const id = c.req.valid("param").id;
    const db = database(c.env.DB);
    const job = await getJob(db, id);
    if (!job) throw new ApiError("not_found", `No job ${JSON.stringify(id)}`);
    // The JobObject adds its ended runs first, so one job's statistics are current.
    await jobObject(c.env, id).flushStats(id);
    const rows = await statsSince(db, sinceOf(c.req.valid("query").since), id);
    return c.json(presentStats(combine(rows), id, upcomingFire(job, Date.now())), 200);
  });
