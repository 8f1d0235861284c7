import type { Env } from "../env";
import { resolvedTriggerOf } from "../scheduling/job-schedule";
import { previewFires } from "../scheduling/triggers";
import type { Job } from "./schema";
import { definitionOf, type JobRow } from "./store";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Maps a stored job to its wire shape; `withNextRuns` adds the next five fires. */
export function toJob(row: JobRow, withNextRuns = false): Job {
  const def = definitionOf(row);
  const job: Job = {
    id: row.id,
    ...def,
    name: row.name,
    state: row.state as Job["state"],
    version: row.version,
    next_run_at: iso(row.nextRunAt),
    last_run_at: iso(row.lastRunAt),
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
  if (withNextRuns) {
    job.next_run_times = row.state === "active" ? previewFires(resolvedTriggerOf(row), Date.now(), 5).items : [];
  }
  return job;
}

/** The JobObject that owns a job's clock and lock. */
export function jobObject(env: Env, id: string) {
  return env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(id));
}
