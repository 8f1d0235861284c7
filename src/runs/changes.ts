/**
 * Every change of a run's state, as pure functions over the run: each returns
 * the changed run, or undefined when the run is not in a state that allows the
 * change (another delivery got there first, the run was cancelled, its
 * attempt already ended). An owner applies them to its own ledger in one
 * synchronous step (load, decide, store), so they are conditional updates.
 */
import { type AttemptEntry, attemptEntry } from "./attempt-history";
import { bounded } from "./bounded";
import { LEASE_GRACE_MS } from "./run-timeout";
import type { AttemptOutcome, RunRow } from "./store";
import { sourcesOf, WAITING } from "./transitions";

/** A run due within this window may start now rather than wait for another message. */
export const EARLY_START_MS = 1_000;

const waiting = (run: RunRow) => WAITING.includes(run.status as (typeof WAITING)[number]);

/** Starts attempt `attempt` of a waiting run that is due, and takes its lease. */
export function claim(run: RunRow, attempt: number, now: number): RunRow | undefined {
  if (!waiting(run) || run.attempt !== attempt - 1 || run.cancelRequested) return undefined;
  if (run.availableAt > now + EARLY_START_MS) return undefined;
  // A task that expired before its first attempt never starts.
  if (run.attempt === 0 && run.expiresAt !== null && run.expiresAt < now) return undefined;
  return {
    ...run,
    status: "running",
    attempt,
    startedAt: now,
    durationMs: null,
    leaseExpiresAt: now + run.timeout * 1000 + LEASE_GRACE_MS,
    updatedAt: now,
  };
}

/** Records how the running attempt `attempt` ended; its history gains one entry. */
export function finish(run: RunRow, attempt: number, outcome: AttemptOutcome, now: number): RunRow | undefined {
  if (run.status !== "running" || run.attempt !== attempt) return undefined;
  const durationMs = run.startedAt === null ? null : Math.max(0, now - run.startedAt);
  const history = [...((run.attempts as AttemptEntry[] | null) ?? []), attemptEntry(run, outcome, now, durationMs)];
  const common = { ...run, updatedAt: now, leaseExpiresAt: null, deferredReason: null, attempts: history, durationMs };
  if (outcome.status === "retrying")
    return { ...common, status: "retrying", error: bounded(outcome.error), availableAt: outcome.availableAt };
  return {
    ...common,
    status: outcome.status,
    finishedAt: now,
    availableAt: now,
    ...(outcome.status === "succeeded" ? { result: bounded(outcome.result), error: null } : { error: bounded(outcome.error) }),
  };
}

/** Gives back a claim whose attempt could not start (the host guard said wait), without spending the attempt. */
export function unclaim(run: RunRow, attempt: number, until: number, reason: string, now: number): RunRow | undefined {
  if (run.status !== "running" || run.attempt !== attempt) return undefined;
  return {
    ...run,
    status: attempt > 1 ? "retrying" : "queued",
    attempt: attempt - 1,
    startedAt: null,
    leaseExpiresAt: null,
    availableAt: until,
    deferredReason: reason,
    updatedAt: now,
  };
}

/** Ends a task whose expires_at passed before its first attempt started. */
export function expire(run: RunRow, now: number): RunRow | undefined {
  if (!waiting(run) || run.attempt !== 0) return undefined;
  const error = { message: "expired before it started", expires_at: new Date(run.expiresAt ?? now).toISOString() };
  return { ...run, status: "expired", finishedAt: now, availableAt: now, updatedAt: now, error };
}

/** Cancels a run that has not finished; a running attempt's result will be ignored. */
export function cancel(run: RunRow, now: number): RunRow | undefined {
  if (!sourcesOf("cancelled").includes(run.status as ReturnType<typeof sourcesOf>[number])) return undefined;
  return { ...run, status: "cancelled", cancelRequested: true, finishedAt: now, leaseExpiresAt: null, availableAt: now, updatedAt: now };
}

/** Takes back a running attempt whose lease expired (its consumer vanished): it retries if attempts remain, else it is dead. */
export function reclaim(run: RunRow, now: number): RunRow | undefined {
  if (run.status !== "running" || run.leaseExpiresAt === null || run.leaseExpiresAt > now) return undefined;
  const error = { message: "lease expired: the consumer running this attempt stopped without a result", attempt: run.attempt };
  const outcome: AttemptOutcome =
    run.attempt < run.maxAttempts ? { status: "retrying", error, availableAt: now } : { status: "dead", error };
  return finish(run, run.attempt, outcome, now);
}
