import { describe, expect, it } from "vitest";
import { checkLease, expiredLeases, type LeasedRun, leaseUntil } from "../../src/scheduling/leases";

const NOW = Date.UTC(2026, 0, 1, 12);
const run = (overrides: Partial<LeasedRun>): LeasedRun => ({
  status: "queued",
  availableAt: NOW,
  leaseExpiresAt: null,
  timeout: 10,
  ...overrides,
});

describe("checkLease: a lease lasts until its run is final", () => {
  it.each([
    ["a run that was never written (its insert failed)", undefined, { action: "release" }],
    ["a succeeded run", run({ status: "succeeded" }), { action: "release" }],
    ["a dead run", run({ status: "dead" }), { action: "release" }],
    ["a cancelled run", run({ status: "cancelled" }), { action: "release" }],
    ["a run queued behind a backlog", run({ status: "queued", availableAt: NOW - 60_000 }), { action: "renew", until: NOW + 40_000 }],
    ["a run retrying in five minutes", run({ status: "retrying", availableAt: NOW + 300_000 }), { action: "renew", until: NOW + 340_000 }],
    ["a run the host guard deferred", run({ status: "queued", availableAt: NOW + 5_000 }), { action: "renew", until: NOW + 45_000 }],
    [
      "a running attempt under its consumer's live lease",
      run({ status: "running", leaseExpiresAt: NOW + 20_000 }),
      { action: "renew", until: NOW + 20_000 },
    ],
    [
      "a running attempt whose consumer vanished: kept until the heartbeat reclaims it",
      run({ status: "running", leaseExpiresAt: NOW - 1 }),
      { action: "renew", until: NOW + 60_000 },
    ],
  ] as const)("%s", (_name, leased, verdict) => {
    expect(checkLease(leased, NOW)).toEqual(verdict);
  });
});

describe("leases", () => {
  it("leaseUntil is the start, the timeout and a 30 s grace", () => {
    expect(leaseUntil(NOW, 40)).toBe(NOW + 70_000);
  });

  it("expiredLeases lists only the leases whose time to look has come", () => {
    const leases = new Map([
      ["a", NOW - 1],
      ["b", NOW],
      ["c", NOW + 1],
    ]);
    expect(expiredLeases(leases, NOW)).toEqual(["a", "b"]);
  });
});
