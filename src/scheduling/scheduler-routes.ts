import { createRoute, z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { lastHeartbeat } from "../heartbeat/state";
import { openApiApp } from "../http/openapi-app";
import { errorResponses } from "../schemas/common";

export const SchedulerState = z
  .object({
    paused: z.boolean(),
    heartbeat_at: z.string().datetime().nullable().openapi({ description: "Last Cron Trigger tick" }),
  })
  .openapi("SchedulerState");

const getScheduler = createRoute({
  method: "get",
  path: "/scheduler",
  tags: ["scheduler"],
  summary: "Scheduler-wide state",
  responses: {
    200: { description: "Scheduler state", content: { "application/json": { schema: SchedulerState } } },
    ...errorResponses,
  },
});

/** Scheduler-wide routes under /v1. */
export const schedulerRoutes = openApiApp().openapi(getScheduler, async (c) => {
  const heartbeat = await lastHeartbeat(database(c.env.DB));
  return c.json({ paused: false, heartbeat_at: heartbeat === undefined ? null : new Date(heartbeat).toISOString() }, 200);
});
