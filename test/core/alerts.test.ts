import { describe, expect, it } from "vitest";
import { type AlertConfig, type AlertState, applyJobEvent, type JobEvent, NO_INCIDENTS } from "../../src/scheduling/alerts";

const config: AlertConfig = { on_dead: true, after_consecutive_failures: 3, expect_success_within: 3600 };

function play(events: JobEvent[], cfg = config) {
  let state: AlertState = NO_INCIDENTS;
  const sent: string[] = [];
  for (const event of events) {
    const result = applyJobEvent(state, event, cfg);
    state = result.state;
    sent.push(...result.alerts.map((a) => a.event));
  }
  return { state, sent };
}
const outcome = (status: string, at = 0): JobEvent => ({ kind: "outcome", status, at });

describe("job alerts", () => {
  it("a dead run alerts once per incident, however many dead runs follow", () => {
    expect(play([outcome("dead"), outcome("dead")], { on_dead: true }).sent).toEqual(["run_dead"]);
  });

  it("N failed, dead or missed runs in a row alert once", () => {
    expect(
      play([outcome("failed"), outcome("missed"), outcome("failed"), outcome("failed")], { on_dead: false, after_consecutive_failures: 3 })
        .sent,
    ).toEqual(["consecutive_failures"]);
  });

  it("a success in between resets the streak", () => {
    expect(
      play([outcome("failed"), outcome("failed"), outcome("succeeded"), outcome("failed")], {
        on_dead: false,
        after_consecutive_failures: 3,
      }).sent,
    ).toEqual([]);
  });

  it("the next success sends one recovery alert naming what recovered, then nothing more", () => {
    const { sent, state } = play([outcome("dead"), outcome("dead"), outcome("dead"), outcome("succeeded"), outcome("succeeded")]);
    expect(sent).toEqual(["run_dead", "consecutive_failures", "recovered"]);
    expect(state).toEqual(NO_INCIDENTS);
  });

  it("a missed deadline alerts once per incident and recovers on success", () => {
    expect(play([{ kind: "deadline", at: 1 }, { kind: "deadline", at: 2 }, outcome("succeeded", 3)]).sent).toEqual([
      "deadline_missed",
      "recovered",
    ]);
  });

  it("cancelled and skipped runs neither count nor recover", () => {
    expect(play([outcome("failed"), outcome("cancelled"), outcome("skipped"), outcome("failed"), outcome("failed")]).sent).toEqual([
      "consecutive_failures",
    ]);
  });

  it("a deadline event does nothing for a job without expect_success_within", () => {
    expect(play([{ kind: "deadline", at: 1 }], { on_dead: true }).sent).toEqual([]);
  });
});
