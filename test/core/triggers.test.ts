import { describe, expect, it } from "vitest";
import { Trigger, TriggerPreviewRequest } from "../../src/scheduling/trigger-schema";
import {
  applyJitter,
  describeFire,
  nextFireTimes,
  normaliseCronSteps,
  previewFires,
  resolveTrigger,
  type TriggerDefaults,
} from "../../src/scheduling/triggers";

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString().replace(".000Z", "Z");

/** Parses a trigger through the schema, as the API would, and resolves it against job defaults. */
function resolve(input: Record<string, unknown>, job: TriggerDefaults = {}) {
  return resolveTrigger(Trigger.parse(input), job);
}

function cronFires(expression: string, timezone: string, after: string, count: number, bounds: object = {}): string[] {
  return nextFireTimes(resolve({ type: "cron", expression, timezone, ...bounds }), ms(after), count).map(iso);
}

/** The first validation message the schema gives for a trigger. */
function rejection(input: unknown): string | undefined {
  const result = Trigger.safeParse(input);
  return result.success ? undefined : result.error.issues.map((i) => i.message).join("; ");
}

describe("cron fire times", () => {
  it.each([
    [
      "a fixed 02:30 in New York's spring-forward gap fires once, at 03:00 EDT",
      "30 2 * * *",
      "America/New_York",
      "2024-03-09T12:00:00Z",
      ["2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z"],
    ],
    [
      "a fixed 01:30 in New York's repeated hour fires once, at the EDT occurrence",
      "30 1 * * *",
      "America/New_York",
      "2024-11-02T12:00:00Z",
      ["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"],
    ],
    [
      "a fixed 01:30 in London's spring-forward gap fires once, at 02:00 BST",
      "30 1 * * *",
      "Europe/London",
      "2024-03-30T12:00:00Z",
      ["2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"],
    ],
    [
      "a fixed 01:30 in London's repeated hour fires once, at the BST occurrence",
      "30 1 * * *",
      "Europe/London",
      "2024-10-26T12:00:00Z",
      ["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"],
    ],
    [
      "*/15 follows both passes of New York's repeated hour",
      "*/15 * * * *",
      "America/New_York",
      "2024-11-03T05:40:00Z",
      ["2024-11-03T05:45:00Z", "2024-11-03T06:00:00Z", "2024-11-03T06:15:00Z", "2024-11-03T06:30:00Z", "2024-11-03T06:45:00Z"],
    ],
    [
      "an hourly job follows both passes of London's repeated hour",
      "0 * * * *",
      "Europe/London",
      "2024-10-26T23:30:00Z",
      ["2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z"],
    ],
    [
      "an hourly job skips the hour New York's spring-forward removes",
      "0 * * * *",
      "America/New_York",
      "2024-03-10T06:30:00Z",
      ["2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"],
    ],
    [
      "a list of fixed hours fires once in the repeated hour, as Vixie cron does",
      "30 1,13 * * *",
      "America/New_York",
      "2024-11-03T00:00:00Z",
      ["2024-11-03T05:30:00Z", "2024-11-03T18:30:00Z", "2024-11-04T06:30:00Z"],
    ],
    [
      "a list of fixed hours still fires the one the gap skips",
      "30 2,14 * * *",
      "America/New_York",
      "2024-03-10T00:00:00Z",
      ["2024-03-10T07:00:00Z", "2024-03-10T18:30:00Z"],
    ],
    [
      "L is the last day of the month, Feb 29 in a leap year",
      "0 0 L * *",
      "UTC",
      "2024-01-15T00:00:00Z",
      ["2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"],
    ],
    [
      "15W moves a Saturday 15th to Friday 14th",
      "0 0 15W * *",
      "UTC",
      "2024-06-01T00:00:00Z",
      ["2024-06-14T00:00:00Z", "2024-07-15T00:00:00Z"],
    ],
    ["LW is the last weekday of the month", "0 0 LW * *", "UTC", "2024-03-01T00:00:00Z", ["2024-03-29T00:00:00Z", "2024-04-30T00:00:00Z"]],
    ["MON#2 is the second Monday", "0 9 * * MON#2", "UTC", "2024-01-01T00:00:00Z", ["2024-01-08T09:00:00Z", "2024-02-12T09:00:00Z"]],
    ["5L is the last Friday", "0 0 * * 5L", "UTC", "2024-01-01T00:00:00Z", ["2024-01-26T00:00:00Z", "2024-02-23T00:00:00Z"]],
    ["Feb 29 fires only in leap years", "0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]],
    [
      "day of month and day of week are ORed, as in standard cron",
      "0 0 13 * 5",
      "UTC",
      "2024-09-30T00:00:00Z",
      ["2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z", "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z"],
    ],
    [
      "a sixth leading field is seconds",
      "*/20 * * * * *",
      "UTC",
      "2024-01-01T00:00:00Z",
      ["2024-01-01T00:00:20Z", "2024-01-01T00:00:40Z", "2024-01-01T00:01:00Z"],
    ],
    [
      "a fire inside the same second as afterMs is not returned",
      "* * * * * *",
      "UTC",
      "2024-01-01T00:00:20.500Z",
      ["2024-01-01T00:00:21Z"],
    ],
    ["a cron without start_date fires strictly after afterMs", "0 * * * *", "UTC", "2024-01-01T05:00:00Z", ["2024-01-01T06:00:00Z"]],
    ["an expression that can never match (Feb 30) returns no fires", "0 0 30 2 *", "America/New_York", "2024-01-01T00:00:00Z", []],
  ])("%s", (_name, expression, zone, after, expected) => {
    expect(cronFires(expression, zone, after, expected.length || 5)).toEqual(expected);
  });

  it("a fire exactly at start_date counts, and nothing before it", () => {
    const bounds = { start_date: "2024-01-01T05:00:00Z" };
    expect(cronFires("0 * * * *", "UTC", "2024-01-01T00:00:00Z", 2, bounds)).toEqual(["2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z"]);
  });

  it("nothing fires after end_date, and a fire exactly at it still counts", () => {
    const bounds = { end_date: "2024-01-01T07:00:00Z" };
    expect(cronFires("0 * * * *", "UTC", "2024-01-01T04:30:00Z", 10, bounds)).toEqual([
      "2024-01-01T05:00:00Z",
      "2024-01-01T06:00:00Z",
      "2024-01-01T07:00:00Z",
    ]);
  });
});

// Expected fires written from Quartz's and croniter's documented reading of a step after a
// single value, "start/step" = "start-max/step" (croniter normalises "10/5" to "10-59/5"), with
// croniter's field ranges (day of week 0-6, Sunday 0). Mondays: 2027-01-04 and 2027-01-11.
describe("cron steps after a single value", () => {
  const monday = "2027-01-04T10:00:00Z";
  it.each([
    [
      "minute 5/10 is 5, 15, 25 ... 55",
      "5/10 * * * *",
      "UTC",
      monday,
      [
        "2027-01-04T10:05:00Z",
        "2027-01-04T10:15:00Z",
        "2027-01-04T10:25:00Z",
        "2027-01-04T10:35:00Z",
        "2027-01-04T10:45:00Z",
        "2027-01-04T10:55:00Z",
        "2027-01-04T11:05:00Z",
      ],
    ],
    [
      "second 0/15 is 0, 15, 30, 45",
      "0/15 * * * * *",
      "UTC",
      monday,
      ["2027-01-04T10:00:15Z", "2027-01-04T10:00:30Z", "2027-01-04T10:00:45Z", "2027-01-04T10:01:00Z"],
    ],
    [
      "second 30/20 is 30 and 50",
      "30/20 * * * * *",
      "UTC",
      monday,
      ["2027-01-04T10:00:30Z", "2027-01-04T10:00:50Z", "2027-01-04T10:01:30Z"],
    ],
    [
      "hour 2/6 is 2, 8, 14, 20",
      "0 2/6 * * *",
      "UTC",
      monday,
      ["2027-01-04T14:00:00Z", "2027-01-04T20:00:00Z", "2027-01-05T02:00:00Z", "2027-01-05T08:00:00Z"],
    ],
    [
      "hour 9/12 in Asia/Taipei is 09:00 and 21:00 local",
      "0 9/12 * * *",
      "Asia/Taipei",
      monday,
      ["2027-01-04T13:00:00Z", "2027-01-05T01:00:00Z"],
    ],
    [
      "day of month 5/10 is the 5th, 15th and 25th",
      "0 0 5/10 * *",
      "UTC",
      monday,
      ["2027-01-05T00:00:00Z", "2027-01-15T00:00:00Z", "2027-01-25T00:00:00Z", "2027-02-05T00:00:00Z"],
    ],
    [
      "month 3/4 is March, July, November",
      "0 0 1 3/4 *",
      "UTC",
      monday,
      ["2027-03-01T00:00:00Z", "2027-07-01T00:00:00Z", "2027-11-01T00:00:00Z", "2028-03-01T00:00:00Z"],
    ],
    [
      "month JAN/3 is January, April, July, October",
      "0 0 1 JAN/3 *",
      "UTC",
      monday,
      ["2027-04-01T00:00:00Z", "2027-07-01T00:00:00Z", "2027-10-01T00:00:00Z", "2028-01-01T00:00:00Z"],
    ],
    [
      "day of week 1/2 is Monday, Wednesday, Friday (up to 6, as croniter)",
      "0 0 * * 1/2",
      "UTC",
      monday,
      ["2027-01-06T00:00:00Z", "2027-01-08T00:00:00Z", "2027-01-11T00:00:00Z", "2027-01-13T00:00:00Z"],
    ],
    [
      "day of week mon/2 reads as 1/2",
      "0 0 * * mon/2",
      "UTC",
      monday,
      ["2027-01-06T00:00:00Z", "2027-01-08T00:00:00Z", "2027-01-11T00:00:00Z", "2027-01-13T00:00:00Z"],
    ],
    [
      "day of week 0/3 is Sunday, Wednesday, Saturday",
      "0 0 * * 0/3",
      "UTC",
      monday,
      ["2027-01-06T00:00:00Z", "2027-01-09T00:00:00Z", "2027-01-10T00:00:00Z", "2027-01-13T00:00:00Z"],
    ],
    [
      "a step inside a list, 0/15,7",
      "0/15,7 * * * *",
      "UTC",
      monday,
      ["2027-01-04T10:07:00Z", "2027-01-04T10:15:00Z", "2027-01-04T10:30:00Z", "2027-01-04T10:45:00Z", "2027-01-04T11:00:00Z"],
    ],
    // Quartz's reading; croniter alone reads a range whose ends meet ("59-59/15") as the whole field.
    [
      "a start at the field's maximum, 59/15, is that value only (Quartz)",
      "59/15 * * * *",
      "UTC",
      monday,
      ["2027-01-04T10:59:00Z", "2027-01-04T11:59:00Z"],
    ],
  ])("%s", (_name, expression, zone, after, expected) => {
    expect(cronFires(expression, zone, after, expected.length)).toEqual(expected);
  });

  it.each([
    ["5/10 * * * *", "5-59/10 * * * *"],
    ["0/15,7 0 1/2 jan/3 MON/2", "0-59/15,7 0 1-31/2 jan-12/3 MON-6/2"],
    ["30/20  *   * * * *", "30-59/20 * * * * *"],
    ["*/5 1-10/2 L * 5L", "*/5 1-10/2 L * 5L"],
  ])("%s is evaluated as %s", (expression, normalised) => {
    expect(normaliseCronSteps(expression)).toBe(normalised);
    expect(resolve({ type: "cron", expression })).toMatchObject({ expression: normalised });
  });

  it.each([
    ["a start past the field's maximum", "60/5 * * * *", '"60/5" starts at 60, outside the minute field (0-59)'],
    ["a day of month of 0", "0 0 0/5 * *", '"0/5" starts at 0, outside the day-of-month field (1-31)'],
    ["a day of week of 7 (Sunday's alias starts no step)", "0 0 * * 7/2", '"7/2" starts at 7, outside the day-of-week field (0-6)'],
    ["a step of 0", "5/0 * * * *", "illegal stepping: 0"],
    ["a month name in the day-of-week field", "0 0 * * JAN/2", "invalid cron expression"],
  ])("refuses %s", (_name, expression, message) => {
    expect(rejection({ type: "cron", expression })).toContain(message);
  });
});

describe("interval and date fire times", () => {
  const start = "2024-03-09T17:00:00Z"; // 12:00 EST, the day before New York springs forward

  it("days: 1 counts 24 h of elapsed time, so the wall time moves from 12:00 to 13:00 across DST", () => {
    const fires = nextFireTimes(resolve({ type: "interval", days: 1, start_date: start, timezone: "America/New_York" }), ms(start), 2);
    expect(fires.map(iso)).toEqual(["2024-03-10T17:00:00Z", "2024-03-11T17:00:00Z"]);
    expect(describeFire(fires[0] ?? 0, "America/New_York").local).toBe("2024-03-10T13:00:00");
  });

  it("before start_date the first fire is start_date itself", () => {
    expect(nextFireTimes(resolve({ type: "interval", minutes: 5, start_date: start }), ms(start) - 60_000, 1)).toEqual([ms(start)]);
  });

  it("an interval never returns the fire it was handed", () => {
    expect(nextFireTimes(resolve({ type: "interval", minutes: 5, start_date: start }), ms(start) + 300_000, 1)).toEqual([
      ms(start) + 600_000,
    ]);
  });

  it("an interval without start_date is anchored at afterMs, so it first fires one interval later", () => {
    expect(nextFireTimes(resolve({ type: "interval", seconds: 15 }), 1_000, 2)).toEqual([16_000, 31_000]);
  });

  it("an interval stops at end_date, inclusive", () => {
    const trigger = resolve({ type: "interval", hours: 1, start_date: start, end_date: "2024-03-09T19:00:00Z" });
    expect(nextFireTimes(trigger, ms(start) - 1, 10).map(iso)).toEqual([
      "2024-03-09T17:00:00Z",
      "2024-03-09T18:00:00Z",
      "2024-03-09T19:00:00Z",
    ]);
  });

  it("a huge count is capped at 1000 fires", () => {
    expect(nextFireTimes(resolve({ type: "interval", seconds: 1 }), 0, 1e9)).toHaveLength(1000);
  });

  it.each([
    ["a date trigger fires once when run_at is after afterMs", "2026-12-31T00:00:00Z", [ms("2027-01-01T00:00:00Z")]],
    ["a date trigger whose run_at is afterMs has nothing left to fire", "2027-01-01T00:00:00Z", []],
    ["a date trigger in the past has nothing left to fire", "2027-06-01T00:00:00Z", []],
  ])("%s", (_name, after, expected) => {
    expect(nextFireTimes(resolve({ type: "date", run_at: "2027-01-01T00:00:00Z" }), ms(after), 5)).toEqual(expected);
  });
});

describe("resolveTrigger", () => {
  const job = { timezone: "Asia/Taipei", start_date: "2024-01-01T00:00:00Z", end_date: "2025-01-01T00:00:00Z", jitter: 5 };

  it("the trigger's own timezone, dates and jitter win over the job's", () => {
    const own = { timezone: "Europe/London", start_date: "2024-06-01T00:00:00Z", end_date: "2024-07-01T00:00:00Z", jitter: 9 };
    expect(resolve({ type: "cron", expression: "0 0 * * *", ...own }, job)).toEqual({
      type: "cron",
      expression: "0 0 * * *",
      timezone: "Europe/London",
      startMs: ms(own.start_date),
      endMs: ms(own.end_date),
      jitter: 9,
    });
  });

  it("the job's values fill what the trigger leaves out, and the zone defaults to UTC", () => {
    expect(resolve({ type: "interval", seconds: 15 }, job)).toEqual({
      type: "interval",
      intervalMs: 15_000,
      timezone: "Asia/Taipei",
      startMs: ms(job.start_date),
      endMs: ms(job.end_date),
      jitter: 5,
    });
    expect(resolve({ type: "cron", expression: "0 0 * * *" }).timezone).toBe("UTC");
  });
});

describe("applyJitter", () => {
  const fire = ms("2024-01-01T00:00:00Z");

  it.each([
    ["the lowest draw keeps the fire time", 0, fire],
    ["the highest draw delays by the whole jitter", 1, fire + 10_000],
    ["a middle draw delays proportionally", 0.25, fire + 2_500],
    ["an out-of-range draw is clamped", 7, fire + 10_000],
    ["a NaN draw is treated as no delay", Number.NaN, fire],
  ])("%s", (_name, draw, expected) => {
    expect(applyJitter(fire, 10, () => draw)).toBe(expected);
  });

  it("random draws stay within 0..jitter seconds after the fire, and jitter 0 changes nothing", () => {
    for (let i = 0; i < 200; i++) {
      const t = applyJitter(fire, 30);
      expect(t).toBeGreaterThanOrEqual(fire);
      expect(t).toBeLessThanOrEqual(fire + 30_000);
    }
    expect(applyJitter(fire, 0, () => 0.9)).toBe(fire);
  });
});

describe("trigger schema", () => {
  it.each([
    ["the design's cron example", { type: "cron", expression: "0 30 2 * * *", timezone: "Asia/Taipei" }],
    ["an interval of 15 seconds", { type: "interval", seconds: 15 }],
    ["a date with an offset", { type: "date", run_at: "2027-01-01T08:00:00+08:00" }],
    ["names, L, W, # and croner's FRIL", { type: "cron", expression: "0 0 15W jan-dec MON#2,FRIL" }],
    [
      "equal start and end dates",
      { type: "cron", expression: "0 0 * * *", start_date: "2027-01-01T00:00:00Z", end_date: "2027-01-01T00:00:00Z" },
    ],
  ])("accepts %s", (_name, input) => {
    expect(rejection(input)).toBeUndefined();
  });

  it.each([
    ["a minute of 61", { type: "cron", expression: "61 * * * *" }, "invalid cron expression: Invalid value for minute: 61"],
    [
      "seven fields (a year)",
      { type: "cron", expression: "0 0 0 1 1 * 2030" },
      "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got 7",
    ],
    ["a nickname", { type: "cron", expression: "@daily" }, 'nicknames such as "@daily" are not supported'],
    [
      "? outside the day fields",
      { type: "cron", expression: "0 0 ? ? ?" },
      '"?" is only allowed as the whole day-of-month or day-of-week field',
    ],
    [
      "a date smuggled in as an expression",
      { type: "cron", expression: "2027-01-01T00:00:00 * * * *" },
      "has characters cron does not use",
    ],
    ["an unknown time zone", { type: "cron", expression: "0 0 * * *", timezone: "Mars/Olympus" }, 'unknown time zone "Mars/Olympus"'],
    ["an offset instead of a zone name", { type: "interval", seconds: 5, timezone: "+05:00" }, 'unknown time zone "+05:00"'],
    ["Feb 30", { type: "date", run_at: "2023-02-30T00:00:00Z" }, "2023-02-30 is not a calendar date"],
    ["a local time without offset", { type: "date", run_at: "2027-01-01T00:00:00" }, "expected an ISO 8601 date-time with Z or an offset"],
    [
      "a fraction longer than nanoseconds",
      { type: "date", run_at: `2027-01-01T00:00:00.${"9".repeat(30)}Z` },
      "expected an ISO 8601 date-time",
    ],
    ["an interval of 0 seconds", { type: "interval", seconds: 0 }, "interval must add up to at least 1 second"],
    ["an interval of half a second", { type: "interval", seconds: 0.5 }, "interval must add up to at least 1 second"],
    ["an interval with no unit", { type: "interval" }, "interval must add up to at least 1 second"],
    ["a negative unit", { type: "interval", seconds: 120, minutes: -1 }, "must not be negative"],
    ["an interval over 5 years", { type: "interval", weeks: 300 }, "interval must be at most 5 years"],
    [
      "end_date before start_date",
      { type: "interval", seconds: 5, start_date: "2027-01-02T00:00:00Z", end_date: "2027-01-01T00:00:00Z" },
      "end_date is before start_date",
    ],
    ["a misspelt field", { type: "cron", expression: "0 0 * * *", time_zone: "Asia/Taipei" }, "time_zone"],
    ["jitter over a day", { type: "interval", seconds: 5, jitter: 86_401 }, "86400"],
  ])("rejects %s with a message saying so", (_name, input, message) => {
    expect(rejection(input)).toContain(message);
  });

  it("rejects the wrapping weekday range 6-1, which croner refuses", () => {
    expect(rejection({ type: "cron", expression: "0 12 * * 6-1" })).toContain("From value is larger than to value: '6-1'");
  });

  it("a preview request defaults count to 10 and refuses 101", () => {
    const trigger = { type: "interval", seconds: 15 };
    expect(TriggerPreviewRequest.parse({ trigger }).count).toBe(10);
    const result = TriggerPreviewRequest.safeParse({ trigger, count: 101 });
    expect(result.error?.issues[0]?.message).toBe("count must be 1-100");
  });
});

describe("describeFire and previewFires", () => {
  it.each([
    [
      "a skipped fixed time says so",
      "2024-03-10T07:00:00Z",
      "America/New_York",
      "30 2 * * *",
      "2024-03-10T03:00:00",
      "-04:00",
      "02:30 does not exist on 2024-03-10 in America/New_York (clocks spring forward); fires at 03:00 (EDT, -04:00)",
    ],
    [
      "a repeated fixed time names the occurrence it uses",
      "2024-11-03T05:30:00Z",
      "America/New_York",
      "30 1 * * *",
      "2024-11-03T01:30:00",
      "-04:00",
      "01:30 occurs twice on 2024-11-03 in America/New_York (clocks fall back); fires at the first occurrence only (EDT, -04:00)",
    ],
    [
      "a wildcard job's first pass of the repeated hour",
      "2024-11-03T05:45:00Z",
      "America/New_York",
      "*/15 * * * *",
      "2024-11-03T01:45:00",
      "-04:00",
      "01:45 occurs twice on 2024-11-03 in America/New_York (clocks fall back); fires on the first pass of the repeated hour (EDT, -04:00)",
    ],
    [
      "a wildcard job's second pass of the repeated hour",
      "2024-11-03T06:15:00Z",
      "America/New_York",
      "*/15 * * * *",
      "2024-11-03T01:15:00",
      "-05:00",
      "01:15 occurs twice on 2024-11-03 in America/New_York (clocks fall back); fires on the second pass of the repeated hour (EST, -05:00)",
    ],
    [
      "London's gap is explained in BST",
      "2024-03-31T01:00:00Z",
      "Europe/London",
      "30 1 * * *",
      "2024-03-31T02:00:00",
      "+01:00",
      "01:30 does not exist on 2024-03-31 in Europe/London (clocks spring forward); fires at 02:00 (BST, +01:00)",
    ],
    [
      "London's repeated hour is explained",
      "2024-10-27T00:30:00Z",
      "Europe/London",
      "30 1 * * *",
      "2024-10-27T01:30:00",
      "+01:00",
      "01:30 occurs twice on 2024-10-27 in Europe/London (clocks fall back); fires at the first occurrence only (BST, +01:00)",
    ],
    [
      "Lord Howe's half-hour gap is explained",
      "2024-10-05T15:30:00Z",
      "Australia/Lord_Howe",
      "15 2 * * *",
      "2024-10-06T02:30:00",
      "+11:00",
      "02:15 does not exist on 2024-10-06 in Australia/Lord_Howe (clocks spring forward); fires at 02:30 (+11:00)",
    ],
    [
      "Lord Howe's repeated half hour is explained",
      "2024-04-06T15:00:00Z",
      "Australia/Lord_Howe",
      "*/15 * * * *",
      "2024-04-07T01:30:00",
      "+10:30",
      "01:30 occurs twice on 2024-04-07 in Australia/Lord_Howe (clocks fall back); fires on the second pass of the repeated 30 minutes (+10:30)",
    ],
    [
      "a time requested after the gap needs no note",
      "2024-03-10T07:00:00Z",
      "America/New_York",
      "0 3 * * *",
      "2024-03-10T03:00:00",
      "-04:00",
      undefined,
    ],
    ["an ordinary day needs no note", "2024-06-01T04:00:00Z", "Asia/Taipei", "0 12 * * *", "2024-06-01T12:00:00", "+08:00", undefined],
  ])("%s", (_name, at, zone, expression, local, offset, note) => {
    expect(describeFire(ms(at), zone, expression)).toEqual({
      at: new Date(ms(at)).toISOString(),
      local,
      utc_offset: offset,
      ...(note === undefined ? {} : { note }),
    });
  });

  it("an interval fire in the repeated hour says which pass it is", () => {
    expect(describeFire(ms("2013-11-03T06:35:00Z"), "America/New_York").note).toContain("second pass of the repeated hour (EST, -05:00)");
  });

  it("a preview lists local times and notes only the fire DST moved", () => {
    const preview = previewFires(
      resolve({ type: "cron", expression: "30 2 * * *", timezone: "America/New_York" }),
      ms("2024-03-09T12:00:00Z"),
      2,
    );
    expect(preview.timezone).toBe("America/New_York");
    expect(preview.items.map((i) => [i.local, i.utc_offset, i.note === undefined])).toEqual([
      ["2024-03-10T03:00:00", "-04:00", false],
      ["2024-03-11T02:30:00", "-04:00", true],
    ]);
  });
});
