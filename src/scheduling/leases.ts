/**
 * A job's in-flight leases (max_instances), as pure decisions. A lease is
 * taken under the run's id before the run is written or sent, and released
 * when the run reaches a final status. Its expiry is only a time to look
 * again: a run that is still waiting, retrying or running keeps its slot. A
 * run whose consumer vanished keeps it too, until the heartbeat or the run's
 * redelivered message reclaims it (retries or ends it): never overlapped.
 */
import { LEASE_GRACE_MS } from "../runs/run-timeout";
import { isFinal, type RunStatus } from "../runs/transitions";

/** What a lease check needs to know of its run. */
export interface LeasedRun {
  status: string;
  /** When a waiting run's next attempt is due. */
  availableAt: number;
  /** When a running attempt's own lease ends (its consumer's), or null. */
  leaseExpiresAt: number | null;
  /** Seconds. */
  timeout: number;
}

export type LeaseVerdict =
  /** The run is final, or was never written: the slot is free. */
  | { action: "release" }
  /** The run lives on: look again at `until`. */
  | { action: "renew"; until: number };

/** How soon a running run whose consumer's lease ran out is looked at again: the heartbeat reclaims it within a tick. */
export const STUCK_RUN_RECHECK_MS = 60_000;

/** How long a run that starts at `startsAt` may hold its slot before it is worth checking on. */
export function leaseUntil(startsAt: number, timeoutSeconds: number): number {
  return startsAt + timeoutSeconds * 1000 + LEASE_GRACE_MS;
}

/** Decides an expired lease's fate from its run's current state (undefined: no such run). */
export function checkLease(run: LeasedRun | undefined, now: number): LeaseVerdict {
  if (run === undefined || isFinal(run.status as RunStatus)) return { action: "release" };
  if (run.status === "running") {
    if (run.leaseExpiresAt !== null && run.leaseExpiresAt > now) return { action: "renew", until: run.leaseExpiresAt };
    return { action: "renew", until: now + STUCK_RUN_RECHECK_MS };
  }
  return { action: "renew", until: leaseUntil(Math.max(run.availableAt, now), run.timeout) };
}

/** The leases whose expiry has come: their runs must be looked at before the slots count as free. */
export function expiredLeases(leases: ReadonlyMap<string, number>, now: number): string[] {
  return [...leases].filter(([, until]) => until <= now).map(([runId]) => runId);
}
