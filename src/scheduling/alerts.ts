/**
 * When a job alerts, as a pure function over its alert state: each kind of
 * incident (a dead run, a failure streak, a missed success deadline) alerts
 * once when it opens, and the job's next success sends one recovery alert.
 */
export interface AlertConfig {
  on_dead: boolean;
  after_consecutive_failures?: number | undefined;
  expect_success_within?: number | undefined;
}

export type IncidentKind = "run_dead" | "consecutive_failures" | "deadline_missed";

export interface AlertState {
  /** Failed, dead or missed runs in a row. */
  streak: number;
  /** Open incidents, by kind, with when each opened. */
  open: Partial<Record<IncidentKind, number>>;
  /** Runs already counted (kept by the JobObject so a repeated notice is not counted twice). */
  noted?: string[];
}

export type JobEvent = { kind: "outcome"; status: string; at: number } | { kind: "deadline"; at: number };

export interface AlertToSend {
  event: IncidentKind | "recovered";
  /** When the incident opened: with the kind, it names the incident (and de-duplicates its alert). */
  incidentAt: number;
  recovered?: IncidentKind[];
}

export const NO_INCIDENTS: AlertState = { streak: 0, open: {} };

const FAILING = new Set(["failed", "dead", "missed"]);

/** Applies one event to the alert state; returns the new state and the alerts to send. */
export function applyJobEvent(state: AlertState, event: JobEvent, config: AlertConfig): { state: AlertState; alerts: AlertToSend[] } {
  const open = { ...state.open };
  const alerts: AlertToSend[] = [];
  const openIncident = (kind: IncidentKind) => {
    if (open[kind] !== undefined) return;
    open[kind] = event.at;
    alerts.push({ event: kind, incidentAt: event.at });
  };
  if (event.kind === "deadline") {
    if (config.expect_success_within !== undefined) openIncident("deadline_missed");
    return { state: { streak: state.streak, open }, alerts };
  }
  if (event.status === "succeeded") {
    const recovered = Object.keys(open) as IncidentKind[];
    if (recovered.length > 0)
      alerts.push({ event: "recovered", incidentAt: Math.min(...recovered.map((k) => open[k] ?? event.at)), recovered });
    return { state: { streak: 0, open: {} }, alerts };
  }
  if (!FAILING.has(event.status)) return { state, alerts };
  const streak = state.streak + 1;
  if (event.status === "dead" && config.on_dead) openIncident("run_dead");
  if (config.after_consecutive_failures !== undefined && streak >= config.after_consecutive_failures) openIncident("consecutive_failures");
  return { state: { streak, open }, alerts };
}
