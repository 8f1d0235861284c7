import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { forgetPauseFlag, schedulerPausedRecently, setSchedulerPaused } from "../../src/scheduling/scheduler-state";
import { faultyD1 } from "../helpers/faults";

const flagReads = (calls: string[][]) => calls.filter((statements) => statements.some((sql) => sql.includes("scheduler_state"))).length;

describe("the scheduler's pause flag as fires read it", () => {
  it("alarms due together make one read of a stale flag between them; the others go on the copy held", async () => {
    forgetPauseFlag();
    const d1 = faultyD1();
    const now = Date.now();
    expect(await schedulerPausedRecently(database(d1.db), now)).toBe(false);
    const stale = now + 3_000;
    const answers = await Promise.all(Array.from({ length: 50 }, () => schedulerPausedRecently(database(d1.db), stale)));
    expect(answers.every((paused) => paused === false)).toBe(true);
    expect(flagReads(d1.calls)).toBe(2);
    // The read done, the fresh copy answers without D1.
    expect(await schedulerPausedRecently(database(d1.db), stale + 1_000)).toBe(false);
    expect(flagReads(d1.calls)).toBe(2);
  });

  it("is read again once the isolate's copy is two seconds old, and a pause is seen", async () => {
    forgetPauseFlag();
    const d1 = faultyD1();
    const now = Date.now();
    expect(await schedulerPausedRecently(database(d1.db), now)).toBe(false);
    await setSchedulerPaused(database(d1.db), true, now);
    expect(await schedulerPausedRecently(database(d1.db), now + 1_000)).toBe(true); // this isolate paused it: it forgot its copy
    await setSchedulerPaused(database(d1.db), false, now);
    expect(await schedulerPausedRecently(database(d1.db), now + 2_500)).toBe(false);
    expect(flagReads(d1.calls.filter((s) => s.some((sql) => sql.startsWith("select"))))).toBe(3);
    forgetPauseFlag();
  });

  it("a failed read does not stick: the next fire reads again", async () => {
    forgetPauseFlag();
    const d1 = faultyD1();
    d1.down();
    const now = Date.now();
    expect(await schedulerPausedRecently(database(d1.db), now)).toBe(false);
    d1.heal();
    expect(await schedulerPausedRecently(database(d1.db), now + 10)).toBe(false);
    expect(flagReads(d1.calls)).toBe(2);
  });
});
