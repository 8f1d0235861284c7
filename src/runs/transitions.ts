/** Every status a run can have. */
export const RUN_STATUSES = [
  "scheduled",
  "queued",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "dead",
  "cancelled",
  "missed",
  "skipped",
  "expired",
] as const;

export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses from which an attempt may start. */
export const WAITING: readonly RunStatus[] = ["scheduled", "queued", "retrying"];

/** Statuses a run never leaves. */
export const FINAL: readonly RunStatus[] = ["succeeded", "failed", "dead", "cancelled", "missed", "skipped", "expired"];

const allowed: Record<RunStatus, readonly RunStatus[]> = {
  // expired: a task whose expires_at passed before its first attempt started.
  // Only an attempt that ran can make a run dead: a run that waits (for a message
  // lost or held up by an outage) is handed back to be run, never ended.
  scheduled: ["queued", "running", "cancelled", "expired"],
  queued: ["running", "cancelled", "expired"],
  retrying: ["running", "cancelled"],
  // running -> retrying also covers a lease that expired under a lost consumer;
  // running -> queued gives back a claim the host guard did not let start.
  running: ["succeeded", "failed", "retrying", "queued", "dead", "cancelled"],
  succeeded: [],
  failed: [],
  dead: [],
  cancelled: [],
  missed: [],
  skipped: [],
  expired: [],
};

/** Whether the state machine allows `from -> to`. */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return allowed[from].includes(to);
}

/** Statuses that may move to `to`: the WHERE clause of a conditional update. */
export function sourcesOf(to: RunStatus): RunStatus[] {
  return RUN_STATUSES.filter((from) => allowed[from].includes(to));
}

/** Whether a run has reached a status it never leaves. */
export function isFinal(status: RunStatus): boolean {
  return FINAL.includes(status);
}
