import { describe, expect, it } from "vitest";
import { OUTCOME_GRACE_MS } from "../../src/execution/redelivery";
import { leaseHold, UPKEEP_GAP_MS, upkeepPlan } from "../../src/ledger/upkeep";
import { newRunRow } from "../../src/runs/new-run";
import type { RunRow } from "../../src/runs/store";

const NOW = Date.UTC(2027, 0, 1, 12);
const MINUTE = 60_000;

/** A task's run whose attempt 1 runs under a lease that ends at `leaseEnd`. */
function running(id: string, leaseEnd: number): RunRow {
  const run = newRunRow(
    {
      target: { type: "handler", name: "noop" },
      dueAt: leaseEnd - MINUTE,
      priority: "default",
      retry: undefined,
      timeoutSeconds: 30,
      requestId: null,
    },
    id,
    leaseEnd - MINUTE,
  );
  return { ...run, status: "running", attempt: 1, startedAt: leaseEnd - MINUTE, leaseExpiresAt: leaseEnd };
}

describe("leaseHold: an owner that was down holds expired leases for OUTCOME_GRACE_MS from when it resumes", () => {
  it.each([
    ["nothing runs", [], undefined, undefined],
    ["an attempt is not due for take-back yet", [running("a", NOW)], undefined, undefined],
    ["an attempt became due for take-back just now (an upkeep on time)", [running("a", NOW - OUTCOME_GRACE_MS)], undefined, undefined],
    ["the upkeep is UPKEEP_GAP_MS late: still on time", [running("a", NOW - OUTCOME_GRACE_MS - UPKEEP_GAP_MS)], undefined, undefined],
    [
      "the upkeep is later than UPKEEP_GAP_MS: the owner was down",
      [running("a", NOW - OUTCOME_GRACE_MS - UPKEEP_GAP_MS - 1)],
      undefined,
      NOW + OUTCOME_GRACE_MS,
    ],
    ["a hold in force stays", [running("a", NOW - 20 * MINUTE)], NOW + MINUTE, NOW + MINUTE],
    ["a hold that ended, met on time: the attempts are taken back, no new hold", [running("a", NOW - 20 * MINUTE)], NOW, undefined],
    [
      "a hold that ended long ago, met late again: the owner was down again",
      [running("a", NOW - 20 * MINUTE)],
      NOW - 2 * MINUTE,
      NOW + OUTCOME_GRACE_MS,
    ],
  ] as [string, RunRow[], number | undefined, number | undefined][])("%s", (_case, pending, heldUntil, expected) => {
    expect(leaseHold(pending, heldUntil, NOW)).toBe(expected);
  });
});

describe("upkeepPlan with held leases", () => {
  it("takes back an attempt OUTCOME_GRACE_MS after its lease, or once a hold ends if that is later, and looks again then", () => {
    const late = running("late", NOW - OUTCOME_GRACE_MS);
    expect(upkeepPlan([late], new Map(), NOW).reclaim).toEqual(["late"]);
    const held = upkeepPlan([late], new Map(), NOW, NOW + 3 * MINUTE);
    expect(held.reclaim).toEqual([]);
    expect(held.nextLookAt).toBe(NOW + 3 * MINUTE);
    const fresh = running("fresh", NOW + MINUTE);
    expect(upkeepPlan([fresh], new Map(), NOW, NOW + 3 * MINUTE).nextLookAt).toBe(NOW + MINUTE + OUTCOME_GRACE_MS);
  });
});
