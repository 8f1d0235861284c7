/**
 * D1's jobs.next_run_at is a promise: the time by which the job's JobObject
 * will have run its alarm again; the heartbeat re-arms jobs more than a minute
 * past it. Renewing it only once the next fire passes it, and then a horizon
 * ahead, makes a job firing every second, or every minute, write its row once per half hour
 * while a daily job writes once per fire. The price: a frequent job's lost
 * alarm is noticed up to the horizon later.
 */

/** How far ahead of now a frequent job promises to report in. */
export const PROMISE_HORIZON_MS = 30 * 60_000;

/** What D1's jobs row holds of a job's schedule, as its JobObject last wrote it. */
export interface RecordedSchedule {
  state: string;
  nextRunAt: number | null;
}

/** The promise to hold after choosing `nextFire`: the one held if it still covers that fire, else a new one. */
export function promisedReport(nextFire: number | undefined, promised: number | null, now: number): number | null {
  if (nextFire === undefined) return null;
  if (promised !== null && nextFire <= promised) return promised;
  return Math.max(nextFire, now + PROMISE_HORIZON_MS);
}

/** The columns to write so D1 holds `next`, given what it holds (`known`; null when unknown). Empty: write nothing. */
export function scheduleChange(known: RecordedSchedule | null, next: RecordedSchedule): Partial<RecordedSchedule> {
  return {
    ...(known?.state === next.state ? {} : { state: next.state }),
    ...(known && known.nextRunAt === next.nextRunAt ? {} : { nextRunAt: next.nextRunAt }),
  };
}
