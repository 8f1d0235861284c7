/**
 * The JobObject's fire plan, as a pure function (APScheduler's semantics):
 * fires past end_date never happen (the trigger stops there); a fire later
 * than misfire_grace_time is `missed`; with coalesce a backlog runs once, at
 * its latest fire; a fire while max_instances runs are in flight is `skipped`.
 * Each run is delayed by the trigger's jitter and carries its timeout.
 */
import { applyJitter } from "./triggers";

/** What the plan looks at: the due fires and the job's rules. */
export interface FirePlanInput {
  /**
   * Due fires (<= now), oldest first. With coalesce only the last one counts, so
   * it may be the latest due fire alone (latestDueFire).
   */
  due: readonly number[];
  /** The fire after the last of `due` (it may itself be due when a backlog was cut short). */
  following: number | undefined;
  /** The first fire after now: where the clock goes once a backlog is consumed. */
  nextAfterNow: number | undefined;
  now: number;
  /** Seconds; undefined means no limit. */
  misfireGraceTime: number | undefined;
  coalesce: boolean;
  maxInstances: number;
  /** Runs of this job in flight (leases held). */
  inFlight: number;
  /** Seconds of random delay, 0 to this (the resolved trigger's). */
  jitter: number;
  /** Cap on runs started by one alarm when not coalescing; the rest waits for the next round. */
  maxRunsPerAlarm: number;
  random: () => number;
}

export type FireOutcome = "run" | "missed" | "skipped";

/** One fire's fate; a run starts at `dueAt` (the slot plus jitter). */
export interface PlannedFire {
  slot: number;
  outcome: FireOutcome;
  dueAt: number;
}

export interface FirePlan {
  fires: PlannedFire[];
  /** The next fire to wait for (at once when a backlog remains), or undefined when the trigger is done. */
  nextFire: number | undefined;
}

/** Decides what each due fire becomes and where the clock goes next. */
export function planFires(input: FirePlanInput): FirePlan {
  const graceMs = input.misfireGraceTime === undefined ? Number.POSITIVE_INFINITY : input.misfireGraceTime * 1000;
  const late = (slot: number) => input.now - slot > graceMs;
  let inFlight = input.inFlight;
  let runs = 0;
  const decide = (slot: number): PlannedFire => {
    if (late(slot)) return { slot, outcome: "missed", dueAt: slot };
    if (inFlight >= input.maxInstances) return { slot, outcome: "skipped", dueAt: slot };
    inFlight++;
    runs++;
    return { slot, outcome: "run", dueAt: applyJitter(slot, input.jitter, input.random) };
  };

  if (input.coalesce) {
    // The whole backlog collapses into its latest fire, whose fate is the backlog's.
    const latest = input.due[input.due.length - 1];
    return { fires: latest === undefined ? [] : [decide(latest)], nextFire: input.nextAfterNow };
  }
  // Every fire gets a record, oldest first; past the cap on runs, the rest waits for the next round.
  const fires: PlannedFire[] = [];
  for (const slot of input.due) {
    const wouldRun = !late(slot) && inFlight < input.maxInstances;
    if (wouldRun && runs >= input.maxRunsPerAlarm) return { fires, nextFire: slot };
    fires.push(decide(slot));
  }
  return { fires, nextFire: input.following };
}

/** How long an alarm that could not record its fires waits before trying again: 2 s, doubling, at most a minute. */
export function alarmRetryDelayMs(failures: number): number {
  return Math.min(2 ** Math.max(1, failures) * 1000, 60_000);
}

/** Where a fire's attempts are made: in the job's own alarm, or by the queue consumer. */
export type ExecutionPath = "alarm" | "queue";

/**
 * A target answering within this (the p90 of its recent attempts) is called from the job's
 * alarm. The JobObject is billed for the wall-clock time it waits (about $1.56 per million
 * runs per second of wait at 128 MB), while sending a run through the queue costs its three
 * queue operations, a consumer invocation and two calls back to the JobObject, about $2.2
 * per million more: below a second the alarm is cheaper, and it has no queue hop.
 */
export const FAST_CALL_MS = 1_000;

/**
 * Decides where a job's attempts are made. Only a job with max_instances 1 calls from its alarm
 * (an alarm makes one call at a time); a job with no history yet is assumed fast.
 */
export function executionPath(maxInstances: number, recentDurationsMs: readonly number[]): ExecutionPath {
  if (maxInstances !== 1) return "queue";
  if (recentDurationsMs.length === 0) return "alarm";
  const sorted = [...recentDurationsMs].sort((a, b) => a - b);
  const p90 = sorted[Math.ceil(sorted.length * 0.9) - 1] ?? 0;
  return p90 <= FAST_CALL_MS ? "alarm" : "queue";
}
