import { describe, expect, it } from "vitest";
import { flushDeadline, flushDue } from "../../src/ledger/stats-flush";

const HOUR = 3_600_000;
const T = Date.UTC(2026, 11, 7, 4, 20, 0); // 04:20, an hour closing at 05:00

describe("flushDue: when an owner adds its ended runs to the statistics", () => {
  it.each([
    { case: "nothing waits", waitingSince: T, waiting: 0, now: T + HOUR, due: false },
    { case: "the hour its oldest run ended in is still open", waitingSince: T, waiting: 5, now: T + 30 * 60_000, due: false },
    { case: "that hour has closed", waitingSince: T, waiting: 1, now: Date.UTC(2026, 11, 7, 5, 0, 0), due: true },
    { case: "30 runs have waited five minutes", waitingSince: T, waiting: 30, now: T + 5 * 60_000, due: true },
    { case: "29 runs have waited five minutes", waitingSince: T, waiting: 29, now: T + 5 * 60_000, due: false },
    { case: "30 runs, under five minutes", waitingSince: T, waiting: 30, now: T + 5 * 60_000 - 1, due: false },
  ])("$case: $due", ({ waitingSince, waiting, now, due }) => {
    expect(flushDue(waitingSince, waiting, now)).toBe(due);
  });
});

describe("flushDeadline: owners do not all wake at the top of the hour", () => {
  const closes = Date.UTC(2026, 11, 7, 5, 0, 0);
  const deadlines = Array.from({ length: 1000 }, (_, i) => flushDeadline(T, `job:nightly-${i}`));

  it("falls after the hour closes and within ten minutes of it (the heartbeat folds it at fifteen)", () => {
    for (const at of deadlines) {
      expect(at).toBeGreaterThanOrEqual(closes);
      expect(at).toBeLessThan(closes + 10 * 60_000);
    }
  });

  it("is spread over those ten minutes, and the same for the same owner", () => {
    expect(new Set(deadlines).size).toBeGreaterThan(990);
    const perMinute = new Array(10).fill(0);
    for (const at of deadlines) perMinute[Math.floor((at - closes) / 60_000)]++;
    for (const n of perMinute) expect(n).toBeGreaterThan(60);
    expect(flushDeadline(T + 60_000, "job:nightly-7")).toBe(deadlines[7]);
  });
});
