import type { JobRow } from "../jobs/store";
import type { Trigger } from "./trigger-schema";
import { nextFireTimes, type ResolvedTrigger, resolveTrigger } from "./triggers";

/** The columns of a job that say when it fires. */
export type JobSchedule = Pick<JobRow, "state" | "trigger" | "timezone" | "startDate" | "endDate" | "jitter" | "createdAt">;

/** The job's trigger with its job-level defaults; an interval with no start_date is anchored at creation. */
export function resolvedTriggerOf(
  job: Pick<JobRow, "trigger" | "timezone" | "startDate" | "endDate" | "jitter" | "createdAt">,
): ResolvedTrigger {
  const trigger = job.trigger as Trigger;
  return resolveTrigger(trigger, {
    timezone: job.timezone,
    start_date: job.startDate ?? (trigger.type === "interval" ? job.createdAt : undefined),
    end_date: job.endDate ?? undefined,
    jitter: job.jitter,
  });
}

/** The first fire strictly after `afterMs`, or undefined when the trigger is done. */
export function nextFireAfter(trigger: ResolvedTrigger, afterMs: number): number | undefined {
  return nextFireTimes(trigger, afterMs, 1)[0];
}

/** The next fire the API shows: the trigger's first fire after `now` for an active job, else null. */
export function upcomingFire(job: JobSchedule, now: number): number | null {
  return job.state === "active" ? (nextFireAfter(resolvedTriggerOf(job), now) ?? null) : null;
}
