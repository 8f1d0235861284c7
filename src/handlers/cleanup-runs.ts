import { z } from "@hono/zod-openapi";
import { and, inArray, lt } from "drizzle-orm";
import { database } from "../db/client";
import { runs } from "../db/schema";
import { FINAL } from "../runs/transitions";
import { defineHandler } from "./registry";

const DAY_MS = 86_400_000;
// D1 caps one query at 30 s; deleting in slices keeps each statement short.
const SLICE = 500;

/** Deletes finished runs older than the retention window. Stats rollups stay. */
export const cleanupRunsHandler = defineHandler({
  name: "cleanup-runs",
  description: "Deletes finished runs older than `older_than_days` (job_stats rollups are kept).",
  args: z.object({ older_than_days: z.number().int().min(1).max(3650).default(30), max_rows: z.number().int().min(1).max(100_000).default(10_000) }),
  async run(args, ctx) {
    const db = database(ctx.env.DB);
    const cutoff = Date.now() - args.older_than_days * DAY_MS;
    let deleted = 0;
    while (deleted < args.max_rows && !ctx.signal.aborted) {
      const victims = db
        .select({ id: runs.id })
        .from(runs)
        .where(and(inArray(runs.status, [...FINAL]), lt(runs.updatedAt, cutoff)))
        .limit(Math.min(SLICE, args.max_rows - deleted));
      const removed = await db.delete(runs).where(inArray(runs.id, victims)).returning({ id: runs.id });
      deleted += removed.length;
      if (removed.length === 0) break;
    }
    return { deleted, cutoff: new Date(cutoff).toISOString() };
  },
});
