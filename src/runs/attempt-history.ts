import type { AttemptOutcome, RunRow } from "./store";

/** One line of a run's attempt history: when, how it ended, the status code and error if any. */
export interface AttemptEntry {
  attempt: number;
  started_at: string | null;
  finished_at: string;
  duration_ms: number | null;
  outcome: AttemptOutcome["status"];
  status_code: number | null;
  error: string | null;
}

/** The history line for the attempt `run` is running, ending now with `outcome`. */
export function attemptEntry(run: RunRow, outcome: AttemptOutcome, now: number, durationMs: number | null): AttemptEntry {
  const detail = (outcome.status === "succeeded" ? outcome.result : outcome.error) as { status?: unknown; message?: unknown } | null;
  return {
    attempt: run.attempt,
    started_at: run.startedAt === null ? null : new Date(run.startedAt).toISOString(),
    finished_at: new Date(now).toISOString(),
    duration_ms: durationMs,
    outcome: outcome.status,
    status_code: typeof detail?.status === "number" ? detail.status : null,
    error: outcome.status === "succeeded" ? null : String(detail?.message ?? "error").slice(0, 500),
  };
}
