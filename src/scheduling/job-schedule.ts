import type { JobRow } from "../jobs/store";
import type { Trigger } from "./trigger-schema";
import { intervalMs, nextFireTimes, type ResolvedTrigger, resolveTrigger } from "./triggers";

/** The columns of a job that say when it fires. */
export type JobSchedule = Pick<JobRow, "state" | "trigger" | "timezone" | "startDate" | "endDate" | "jitter" | "anchoredAt" | "createdAt">;

/**
 * The job's trigger with its job-level defaults. An interval with no start_date starts one
 * interval after its trigger was set (APScheduler's now + interval), at creation or at the
 * change that set it.
 */
export function resolvedTriggerOf(job: Omit<JobSchedule, "state">): ResolvedTrigger {
  const trigger = job.trigger as Trigger;
  const anchor = job.anchoredAt ?? job.createdAt;
  return resolveTrigger(trigger, {
    timezone: job.timezone,
    start_date: job.startDate ?? (trigger.type === "interval" ? anchor + intervalMs(trigger) : undefined),
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

/** What a JobObject knew of its job's clock before a new version arrived. */
export interface ClockBefore {
  active: boolean;
  /** scheduleKey() of the old version's trigger. */
  schedule: string;
  nextFire: number | undefined;
}

/** What decides when a trigger fires (everything but jitter): a change of it reschedules the job. */
export function scheduleKey(trigger: ResolvedTrigger): string {
  const { jitter: _jitter, ...when } = trigger;
  return JSON.stringify(when);
}

/**
 * The first fire a new version of a job waits for (APScheduler's modify, reschedule and resume):
 * - not active (paused, finished): none;
 * - still active on the same schedule: the fire it was already waiting for, even if that fire is
 *   due and its alarm late (a rename or a new target loses no fire);
 * - a date trigger fires once per run_at: at run_at, even past (the misfire rules then run it
 *   or record it missed), unless that very instant was already handled;
 * - otherwise (new, resumed, rescheduled): the first fire from now on; paused fires are not replayed.
 */
export function firstFireOfVersion(
  trigger: ResolvedTrigger,
  active: boolean,
  before: ClockBefore | undefined,
  lastFire: number | undefined,
  now: number,
): number | undefined {
  if (!active) return undefined;
  if (before?.active && before.schedule === scheduleKey(trigger)) return before.nextFire;
  if (trigger.type === "date") return trigger.runAtMs === lastFire ? undefined : trigger.runAtMs;
  return nextFireAfter(trigger, now - 1);
}
