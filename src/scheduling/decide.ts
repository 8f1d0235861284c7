/**
 * The JobObject's fire decision, as a pure function (APScheduler's semantics):
 * paused -> nothing runs; fires past end_date never happen; a fire later than
 * misfire_grace_time is `missed`; with coalesce a backlog runs once (the
 * latest fire); a fire while max_instances runs are in flight is `skipped`.
 */
export interface FireDecisionInput {
  /** Fire instants that are due (<= now), oldest first. */
  dueFires: number[];
  now: number;
  paused: boolean;
  endDate: number | undefined;
  /** Seconds; undefined means no limit. */
  misfireGraceTime: number | undefined;
  coalesce: boolean;
  maxInstances: number;
  inFlight: number;
  /** Cap on runs started by one alarm when not coalescing. */
  maxRunsPerAlarm: number;
}

export type FireOutcome = "run" | "missed" | "skipped";

export interface FireDecision {
  slot: number;
  outcome: FireOutcome;
}

/** Decides what each due fire becomes. Fires dropped by coalescing are not listed. */
export function decideFires(input: FireDecisionInput): FireDecision[] {
  if (input.paused) return [];
  const inWindow = input.dueFires.filter((fire) => input.endDate === undefined || fire <= input.endDate);
  const graceMs = input.misfireGraceTime === undefined ? Infinity : input.misfireGraceTime * 1000;
  const late = (fire: number) => input.now - fire > graceMs;
  const onTime = inWindow.filter((fire) => !late(fire));
  const missed: FireDecision[] = inWindow.filter(late).map((slot) => ({ slot, outcome: "missed" }));
  // With coalesce, a backlog collapses into its latest fire; its missed fires are not recorded one by one.
  const candidates = input.coalesce ? onTime.slice(-1) : onTime.slice(-input.maxRunsPerAlarm);
  const decisions: FireDecision[] = input.coalesce ? (onTime.length > 0 ? [] : missed.slice(-1)) : missed.slice(-input.maxRunsPerAlarm);
  let inFlight = input.inFlight;
  for (const slot of candidates) {
    if (inFlight >= input.maxInstances) {
      decisions.push({ slot, outcome: "skipped" });
    } else {
      decisions.push({ slot, outcome: "run" });
      inFlight++;
    }
  }
  return decisions.sort((a, b) => a.slot - b.slot);
}
