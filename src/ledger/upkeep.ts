/**
 * An owner's upkeep of its unfinished runs, as a pure decision: which waiting
 * runs' messages look lost (re-send them), which attempts' consumers vanished
 * (take them back), and when to look again.
 */
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../execution/redelivery";
import type { RunRow } from "../runs/store";

export interface UpkeepPlan {
  /** Waiting runs overdue by more than LOST_MESSAGE_MS, not re-sent within it. */
  resend: string[];
  /** Running attempts whose lease expired more than OUTCOME_GRACE_MS ago (and are not held). */
  reclaim: string[];
  /** The oldest unfinished run's id: a wake scans the ledger from there. */
  oldestPending: string | undefined;
  /** When something pending next needs a look; undefined when nothing is pending. */
  nextLookAt: number | undefined;
}

/** An upkeep this much later than an attempt's take-back means the owner was not running (down, its alarm with it). */
export const UPKEEP_GAP_MS = 90_000;

/** When a running attempt may be taken back: OUTCOME_GRACE_MS after its lease, and not while leases are held. */
function takeBackAt(run: RunRow, heldUntil: number | undefined, now: number): number {
  return Math.max((run.leaseExpiresAt ?? now) + OUTCOME_GRACE_MS, heldUntil ?? 0);
}

/**
 * Until when an owner leaves expired leases alone (undefined: it does not). While it was down,
 * the outcomes of attempts that ended could not reach it, and their messages come back at most
 * MAX_REDELIVERY_SECONDS apart: so an upkeep that finds an attempt overdue for take-back by more
 * than UPKEEP_GAP_MS holds every lease OUTCOME_GRACE_MS longer, as the heartbeat did after a gap
 * in its ticks. `heldUntil`: the hold already in force.
 */
export function leaseHold(pending: RunRow[], heldUntil: number | undefined, now: number): number | undefined {
  const overdue = pending.filter((run) => run.status === "running").map((run) => takeBackAt(run, heldUntil, now));
  const earliest = Math.min(...overdue);
  if (earliest <= now && now - earliest > UPKEEP_GAP_MS) return now + OUTCOME_GRACE_MS;
  return heldUntil !== undefined && heldUntil > now ? heldUntil : undefined;
}

/** Decides an owner's upkeep over its unfinished runs. `resentAt`: when each was last re-sent; `heldUntil`: see leaseHold. */
export function upkeepPlan(pending: RunRow[], resentAt: ReadonlyMap<string, number>, now: number, heldUntil?: number): UpkeepPlan {
  const plan: UpkeepPlan = { resend: [], reclaim: [], oldestPending: undefined, nextLookAt: undefined };
  const lookAt = (at: number) => {
    plan.nextLookAt = plan.nextLookAt === undefined ? at : Math.min(plan.nextLookAt, at);
  };
  for (const run of pending) {
    if (plan.oldestPending === undefined || run.id < plan.oldestPending) plan.oldestPending = run.id;
    if (run.status === "running") {
      const at = takeBackAt(run, heldUntil, now);
      if (at <= now) plan.reclaim.push(run.id);
      else lookAt(at);
      continue;
    }
    const lostAt = Math.max(run.availableAt, resentAt.get(run.id) ?? 0) + LOST_MESSAGE_MS;
    if (lostAt <= now) {
      plan.resend.push(run.id);
      lookAt(now + LOST_MESSAGE_MS);
    } else lookAt(lostAt);
  }
  return plan;
}
