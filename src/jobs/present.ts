import type { Env } from "../env";
import { resolvedTriggerOf, upcomingFire } from "../scheduling/job-schedule";
import { previewFires } from "../scheduling/triggers";
import type { Job } from "./schema";
import { definitionOf, type JobView } from "./store";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Maps a stored job to its wire shape; `withNextRuns` adds the next five fires. next_run_at
 * comes from the trigger: D1's next_run_at is the JobObject's promise, which may be later.
 */
export function toJob(row: JobView, withNextRuns = false, now = Date.now()): Job {
  const def = definitionOf(row);
  const job: Job = {
    id: row.id,
    ...def,
    name: row.name,
    state: row.state as Job["state"],
    version: row.version,
    next_run_at: iso(upcomingFire(row, now)),
    last_run_at: iso(row.lastRunAt),
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
  if (withNextRuns) {
    job.next_run_times = row.state === "active" ? previewFires(resolvedTriggerOf(row), now, 5).items : [];
  }
  return job;
}

/** The JobObject that owns a job's clock and lock. */
export function jobObject(env: Env, id: string) {
  return env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(id));
}
