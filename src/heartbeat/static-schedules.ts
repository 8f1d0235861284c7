import type { Target } from "../execution/target-schema";

/** The Cron Trigger that drives the heartbeat. */
export const HEARTBEAT_CRON = "* * * * *";

/** A handler bound to one of the Worker's own Cron Triggers (celery beat's static schedule). */
export interface StaticSchedule {
  /** Must also be listed under [triggers] crons in wrangler.toml. */
  cron: string;
  target: Target;
}

/** Static schedules. Add a line here and its cron to wrangler.toml. */
export const staticSchedules: StaticSchedule[] = [
  // Run retention, daily at 03:17 UTC: a visible record of the cutoff. The heartbeat already
  // deletes finished runs older than RUN_RETENTION_DAYS every minute, so this finds few.
  { cron: "17 3 * * *", target: { type: "handler", name: "cleanup-runs", args: {} } },
];
