import { z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { deleteOldRuns, retentionDays } from "../runs/retention";
import { defineHandler } from "./registry";

/** Deletes finished runs older than the retention window. Stats rollups stay. */
export const cleanupRunsHandler = defineHandler({
  name: "cleanup-runs",
  description: "Deletes finished runs older than `older_than_days` (default RUN_RETENTION_DAYS or 30); job_stats rollups are kept.",
  args: z.strictObject({
    older_than_days: z.number().int().min(1).max(3650).optional(),
    max_rows: z.number().int().min(1).max(100_000).default(10_000),
  }),
  async run(args, ctx) {
    const days = args.older_than_days ?? retentionDays(ctx.env.RUN_RETENTION_DAYS);
    return deleteOldRuns(database(ctx.env.DB), days, { maxRows: args.max_rows, signal: ctx.signal });
  },
});
