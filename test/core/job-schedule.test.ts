import { describe, expect, it } from "vitest";
import { type ClockBefore, firstFireOfVersion, scheduleKey } from "../../src/scheduling/job-schedule";
import { Trigger } from "../../src/scheduling/trigger-schema";
import { resolveTrigger } from "../../src/scheduling/triggers";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 30);
const everyMinute = resolveTrigger(Trigger.parse({ type: "cron", expression: "* * * * *" }));
const everyFiveMinutes = resolveTrigger(Trigger.parse({ type: "cron", expression: "*/5 * * * *" }));
const pastDate = resolveTrigger(Trigger.parse({ type: "date", run_at: "2026-01-01T11:59:00Z" }));
const lateFire = Date.UTC(2026, 0, 1, 12, 0, 0); // due 30 s ago; its alarm is late
/** An active clock on `trigger` waiting for `nextFire` (undefined: finished). */
const active = (trigger: typeof everyMinute, nextFire: number | undefined): ClockBefore => ({
  active: true,
  schedule: scheduleKey(trigger),
  nextFire,
});

describe("firstFireOfVersion: where a job's clock goes when a new version arrives", () => {
  it.each([
    ["a new job: the first fire from now", everyMinute, true, undefined, undefined, Date.UTC(2026, 0, 1, 12, 1)],
    [
      "a rename or new target on the same schedule keeps the fire it waits for, even a due one",
      everyMinute,
      true,
      active(everyMinute, lateFire),
      undefined,
      lateFire,
    ],
    ["a finished job changed on the same schedule stays finished", everyMinute, true, active(everyMinute, undefined), undefined, undefined],
    ["a new schedule fires from now on", everyFiveMinutes, true, active(everyMinute, lateFire), undefined, Date.UTC(2026, 0, 1, 12, 5)],
    ["a paused job has no fire", everyMinute, false, active(everyMinute, lateFire), undefined, undefined],
    [
      "a resumed job fires from now: paused fires are not replayed",
      everyMinute,
      true,
      { ...active(everyMinute, lateFire), active: false },
      undefined,
      Date.UTC(2026, 0, 1, 12, 1),
    ],
    [
      "a date in the past that never fired is due at once (the misfire rules decide)",
      pastDate,
      true,
      undefined,
      undefined,
      Date.UTC(2026, 0, 1, 11, 59),
    ],
    ["a date that already fired does not fire again", pastDate, true, undefined, Date.UTC(2026, 0, 1, 11, 59), undefined],
  ] as const)("%s", (_name, trigger, isActive, before, lastFire, expected) => {
    expect(firstFireOfVersion(trigger, isActive, before, lastFire, NOW)).toBe(expected);
  });

  it("jitter is not part of the schedule: changing it keeps the clock", () => {
    const jittered = resolveTrigger(Trigger.parse({ type: "cron", expression: "* * * * *", jitter: 5 }));
    expect(scheduleKey(jittered)).toBe(scheduleKey(everyMinute));
  });
});
