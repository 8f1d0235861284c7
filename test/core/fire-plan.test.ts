import { describe, expect, it } from "vitest";
import { alarmRetryDelayMs, type FirePlanInput, planFires } from "../../src/scheduling/decide";
import { dueFires, latestDueFire } from "../../src/scheduling/due-fires";
import { Trigger } from "../../src/scheduling/trigger-schema";
import { resolveTrigger } from "../../src/scheduling/triggers";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const at = (minutes: number) => T0 + minutes * MINUTE;
const trigger = (input: unknown) => resolveTrigger(Trigger.parse(input));
const everyMinute = trigger({ type: "cron", expression: "* * * * *" });

/** A plan input for a job due at `due`, with APScheduler's defaults unless overridden. */
function input(overrides: Partial<FirePlanInput>): FirePlanInput {
  return {
    due: [],
    following: undefined,
    nextAfterNow: undefined,
    now: at(10),
    misfireGraceTime: 60,
    coalesce: true,
    maxInstances: 1,
    inFlight: 0,
    jitter: 0,
    maxRunsPerAlarm: 10,
    random: () => 0,
    ...overrides,
  };
}

describe("planFires: what each due fire becomes", () => {
  it.each([
    ["on time: it runs", { due: [at(10)] }, [{ slot: at(10), outcome: "run" }]],
    ["within misfire_grace_time: it still runs", { due: [at(9)], misfireGraceTime: 60 }, [{ slot: at(9), outcome: "run" }]],
    ["later than misfire_grace_time: missed", { due: [at(8)], misfireGraceTime: 60 }, [{ slot: at(8), outcome: "missed" }]],
    ["no grace limit (null): never missed", { due: [at(-1000)], misfireGraceTime: undefined }, [{ slot: at(-1000), outcome: "run" }]],
    ["max_instances in flight: skipped", { due: [at(10)], inFlight: 1 }, [{ slot: at(10), outcome: "skipped" }]],
    ["with coalesce a backlog runs once, at its latest fire", { due: [at(9.5), at(10)] }, [{ slot: at(10), outcome: "run" }]],
    ["with coalesce a late backlog is one missed fire", { due: [at(1), at(2)] }, [{ slot: at(2), outcome: "missed" }]],
    [
      "without coalesce each fire has its fate: late ones missed, on-time ones run while slots are free, then skipped",
      { coalesce: false, maxInstances: 2, due: [at(7), at(8), at(9.5), at(9.7), at(10)] },
      [
        { slot: at(7), outcome: "missed" },
        { slot: at(8), outcome: "missed" },
        { slot: at(9.5), outcome: "run" },
        { slot: at(9.7), outcome: "run" },
        { slot: at(10), outcome: "skipped" },
      ],
    ],
  ] as const)("%s", (_name, overrides, expected) => {
    const plan = planFires(input(overrides));
    expect(plan.fires.map(({ slot, outcome }) => ({ slot, outcome }))).toEqual(expected);
  });

  it("nothing due plans nothing and keeps the clock", () => {
    expect(planFires(input({ due: [], nextAfterNow: at(11), following: at(11) }))).toEqual({ fires: [], nextFire: at(11) });
  });

  it("with coalesce the clock moves past now, however long the backlog", () => {
    expect(planFires(input({ due: [at(10)], following: at(10.5), nextAfterNow: at(11) })).nextFire).toBe(at(11));
  });

  it("without coalesce the clock moves to the fire after the last one handled", () => {
    const plan = planFires(input({ coalesce: false, due: [at(9.5), at(10)], following: at(10.5), maxInstances: 5 }));
    expect(plan.nextFire).toBe(at(10.5));
  });

  it("without coalesce, past the cap on runs per alarm the rest waits for the next round instead of being dropped", () => {
    const due = [at(9.1), at(9.2), at(9.3), at(9.4)];
    const plan = planFires(input({ coalesce: false, due, maxInstances: 10, maxRunsPerAlarm: 2, following: at(9.5) }));
    expect(plan.fires.map((f) => f.outcome)).toEqual(["run", "run"]);
    expect(plan.nextFire).toBe(at(9.3));
  });

  it("missed and skipped fires do not count against the cap on runs", () => {
    const due = [at(1), at(2), at(9.5), at(9.7)];
    const plan = planFires(input({ coalesce: false, due, maxInstances: 10, maxRunsPerAlarm: 1, following: at(9.8) }));
    expect(plan.fires.map((f) => f.outcome)).toEqual(["missed", "missed", "run"]);
    expect(plan.nextFire).toBe(at(9.7));
  });

  it.each([
    [0, 0],
    [0.5, 15_000],
    [1 - Number.EPSILON, 30_000],
  ])("a run starts after the slot by the trigger's jitter (random %f of 30 s: +%i ms); a missed fire has none", (random, delay) => {
    const plan = planFires(input({ due: [at(10)], jitter: 30, random: () => random }));
    expect(plan.fires[0]).toEqual({ slot: at(10), outcome: "run", dueAt: at(10) + delay });
    const missed = planFires(input({ due: [at(1)], jitter: 30, random: () => random }));
    expect(missed.fires[0]?.dueAt).toBe(at(1));
  });
});

describe("dueFires and latestDueFire: an alarm looks only at the fires that are due", () => {
  it("nothing is due before the pending fire", () => {
    expect(dueFires(everyMinute, at(11), at(10), 100)).toEqual({ due: [], next: at(11) });
    expect(latestDueFire(everyMinute, at(11), at(10))).toBeUndefined();
  });

  it("the pending fire and the fires after it up to now, oldest first, and the next one after those", () => {
    expect(dueFires(everyMinute, at(7), at(10), 100)).toEqual({ due: [at(7), at(8), at(9), at(10)], next: at(11) });
  });

  it("a backlog longer than the limit is cut short: next is the first fire not listed, itself due", () => {
    expect(dueFires(everyMinute, at(0), at(10), 3)).toEqual({ due: [at(0), at(1), at(2)], next: at(3) });
  });

  it("a trigger that ends has no next fire", () => {
    const ending = trigger({ type: "cron", expression: "* * * * *", end_date: new Date(at(9)).toISOString() });
    expect(dueFires(ending, at(8), at(10), 100)).toEqual({ due: [at(8), at(9)], next: undefined });
  });

  it.each([
    ["an every-minute cron a day behind", everyMinute, at(-24 * 60), at(10) + 30_000, at(10)],
    ["a daily cron a year behind", trigger({ type: "cron", expression: "0 3 * * *" }), at(-365 * 24 * 60), at(10), Date.UTC(2026, 0, 1, 3)],
    [
      "a one-second interval an hour behind (arithmetic)",
      trigger({ type: "interval", seconds: 1, start_date: "2026-01-01T00:00:00Z" }),
      at(-60),
      at(10) + 1500,
      at(10) + 1000,
    ],
    ["only the pending fire itself", everyMinute, at(10), at(10) + 59_000, at(10)],
  ] as const)("latestDueFire finds the latest due fire of %s", (_name, t, pending, now, latest) => {
    expect(latestDueFire(t, pending, now)).toBe(latest);
  });

  it("the pending fire counts as due even when it is not on the trigger's calendar (a backdated clock)", () => {
    expect(latestDueFire(trigger({ type: "cron", expression: "0 0 1 1 *" }), at(5), at(10))).toBe(at(5));
  });
});

describe("alarmRetryDelayMs: an alarm that could not record its fires comes back", () => {
  it.each([
    [1, 2_000],
    [2, 4_000],
    [3, 8_000],
    [5, 32_000],
    [6, 60_000],
    [100, 60_000],
  ])("after %i failures in a row, in %i ms", (failures, delay) => {
    expect(alarmRetryDelayMs(failures)).toBe(delay);
  });

  it("keeps trying through a 15-minute outage: the delays add up past 15 minutes within 25 tries, none longer than a minute", () => {
    let elapsed = 0;
    let tries = 0;
    while (elapsed < 15 * MINUTE) elapsed += alarmRetryDelayMs(++tries);
    expect(tries).toBeLessThanOrEqual(25);
  });
});
