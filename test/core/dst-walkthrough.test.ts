import { describe, expect, it } from "vitest";
import { previewFires, resolveTrigger } from "../../src/scheduling/triggers";

// The README's walkthrough of "30 2 * * *" in America/New_York quotes these fires; this keeps it true.
describe("30 2 * * * in America/New_York across both DST nights of 2026", () => {
  const trigger = resolveTrigger({ type: "cron", expression: "30 2 * * *", timezone: "America/New_York" });

  it("spring forward (March 8): 02:30 does not exist, so it fires once at 03:00 EDT", () => {
    const { items } = previewFires(trigger, Date.parse("2026-03-07T12:00:00Z"), 3);
    expect(items.map((f) => [f.at, f.local, f.utc_offset])).toEqual([
      ["2026-03-08T07:00:00.000Z", "2026-03-08T03:00:00", "-04:00"],
      ["2026-03-09T06:30:00.000Z", "2026-03-09T02:30:00", "-04:00"],
      ["2026-03-10T06:30:00.000Z", "2026-03-10T02:30:00", "-04:00"],
    ]);
    expect(items[0]?.note).toMatch(/02:30 does not exist on 2026-03-08/);
  });

  it("fall back (November 1): 02:30 happens once (01:00-01:59 repeats, not 02:30), at EST", () => {
    const { items } = previewFires(trigger, Date.parse("2026-10-31T12:00:00Z"), 2);
    expect(items.map((f) => [f.at, f.local, f.utc_offset])).toEqual([
      ["2026-11-01T07:30:00.000Z", "2026-11-01T02:30:00", "-05:00"],
      ["2026-11-02T07:30:00.000Z", "2026-11-02T02:30:00", "-05:00"],
    ]);
  });

  it("30 1 * * * on the fall-back night fires once, at the first 01:30 (EDT)", () => {
    const oneThirty = resolveTrigger({ type: "cron", expression: "30 1 * * *", timezone: "America/New_York" });
    const { items } = previewFires(oneThirty, Date.parse("2026-10-31T12:00:00Z"), 2);
    expect(items.map((f) => [f.at, f.utc_offset])).toEqual([
      ["2026-11-01T05:30:00.000Z", "-04:00"],
      ["2026-11-02T06:30:00.000Z", "-05:00"],
    ]);
    expect(items[0]?.note).toMatch(/first occurrence/);
  });
});
