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
  /** Running attempts whose lease expired more than OUTCOME_GRACE_MS ago. */
  reclaim: string[];
  /** The oldest unfinished run's id: a wake scans the ledger from there. */
  oldestPending: string | undefined;
  /** When something pending next needs a look; undefined when nothing is pending. */
  nextLookAt: number | undefined;
}

/** Decides an owner's upkeep over its unfinished runs. `resentAt`: when each was last re-sent. */
export function upkeepPlan(pending: RunRow[], resentAt: ReadonlyMap<string, number>, now: number): UpkeepPlan {
  const plan: UpkeepPlan = { resend: [], reclaim: [], oldestPending: undefined, nextLookAt: undefined };
  const lookAt = (at: number) => {
    plan.nextLookAt = plan.nextLookAt === undefined ? at : Math.min(plan.nextLookAt, at);
  };
  for (const run of pending) {
    if (plan.oldestPending === undefined || run.id < plan.oldestPending) plan.oldestPending = run.id;
    if (run.status === "running") {
      const takeBackAt = (run.leaseExpiresAt ?? now) + OUTCOME_GRACE_MS;
      if (takeBackAt <= now) plan.reclaim.push(run.id);
      else lookAt(takeBackAt);
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
