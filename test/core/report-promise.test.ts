import { describe, expect, it } from "vitest";
import { PROMISE_HORIZON_MS, promisedReport, scheduleChange } from "../../src/scheduling/report-promise";

const now = 1_000_000_000_000;
const minute = 60_000;
const day = 24 * 60 * minute;

describe("promisedReport", () => {
  it.each([
    ["a frequent job's first promise is a horizon ahead", now + 1000, null, now + PROMISE_HORIZON_MS],
    ["a fire the promise still covers keeps it (no write)", now + 1000, now + 3 * minute, now + 3 * minute],
    ["a fire exactly at the promise keeps it", now + 3 * minute, now + 3 * minute, now + 3 * minute],
    ["a fire past the promise renews it a horizon ahead", now + 1000, now - 1, now + PROMISE_HORIZON_MS],
    ["a fire beyond the horizon is itself the promise", now + day, now, now + day],
    ["a daily job's next fire is its promise", now + day, null, now + day],
  ])("%s", (_, nextFire, promised, expected) => {
    expect(promisedReport(nextFire, promised, now)).toBe(expected);
  });

  it("a job with no next fire promises nothing", () => {
    expect(promisedReport(undefined, now + minute, now)).toBeNull();
  });
});

describe("scheduleChange", () => {
  it.each([
    ["nothing changed: nothing is written", { state: "active", nextRunAt: 5 }, { state: "active", nextRunAt: 5 }, {}],
    ["a renewed promise writes only next_run_at", { state: "active", nextRunAt: 5 }, { state: "active", nextRunAt: 9 }, { nextRunAt: 9 }],
    [
      "a finished job writes its state and drops the promise",
      { state: "active", nextRunAt: 5 },
      { state: "finished", nextRunAt: null },
      { state: "finished", nextRunAt: null },
    ],
    ["unknown (a new version): every column is written", null, { state: "active", nextRunAt: 5 }, { state: "active", nextRunAt: 5 }],
  ])("%s", (_, known, next, expected) => {
    expect(scheduleChange(known, next)).toEqual(expected);
  });
});
