import { z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { lastHeartbeat } from "../heartbeat/state";
import { openApiApp } from "../http/openapi-app";
import { apiRoute, jsonResponse as json, jsonBody } from "../schemas/common";
import { schedulerPaused, setSchedulerPaused } from "./scheduler-state";
import { TriggerPreview, TriggerPreviewRequest } from "./trigger-schema";
import { previewFires, resolveTrigger } from "./triggers";

export const SchedulerState = z
  .object({
    paused: z.boolean(),
    heartbeat_at: z.string().datetime().nullable().openapi({ description: "Last Cron Trigger tick" }),
  })
  .openapi("SchedulerState");

const state = { 200: json(SchedulerState, "Scheduler state") };
const getScheduler = apiRoute({
  method: "get",
  path: "/scheduler",
  tags: ["scheduler"],
  summary: "Scheduler-wide state",
  responses: state,
});
const pause = apiRoute({ method: "post", path: "/scheduler/pause", tags: ["scheduler"], summary: "Pause every job", responses: state });
const resume = apiRoute({
  method: "post",
  path: "/scheduler/resume",
  tags: ["scheduler"],
  summary: "Resume every job from now (fires during the pause are not replayed)",
  responses: state,
});
const preview = apiRoute({
  method: "post",
  path: "/triggers/preview",
  tags: ["scheduler"],
  summary: "Next fire times of a trigger, with local times and DST notes; creates nothing",
  request: { body: jsonBody(TriggerPreviewRequest) },
  responses: { 200: json(TriggerPreview, "Fire times") },
});

async function current(d1: D1Database) {
  const db = database(d1);
  const [paused, heartbeat] = await Promise.all([schedulerPaused(db), lastHeartbeat(db)]);
  return { paused, heartbeat_at: heartbeat === undefined ? null : new Date(heartbeat).toISOString() };
}

/** Scheduler-wide routes under /v1. */
export const schedulerRoutes = openApiApp()
  .openapi(getScheduler, async (c) => c.json(await current(c.env.DB), 200))
  .openapi(pause, async (c) => {
    await setSchedulerPaused(database(c.env.DB), true, Date.now());
    return c.json(await current(c.env.DB), 200);
  })
  .openapi(resume, async (c) => {
    await setSchedulerPaused(database(c.env.DB), false, Date.now());
    return c.json(await current(c.env.DB), 200);
  })
  .openapi(preview, async (c) => {
    const body = c.req.valid("json");
    const trigger = resolveTrigger(body.trigger, { timezone: body.timezone, start_date: body.start_date, end_date: body.end_date });
    const after = body.after === undefined ? Date.now() : Date.parse(body.after);
    return c.json(previewFires(trigger, after, body.count), 200);
  });
