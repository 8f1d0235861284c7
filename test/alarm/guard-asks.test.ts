import { describe, expect, it } from "vitest";
import { attemptInPlace } from "../../src/execution/attempt-in-place";
import { Target } from "../../src/execution/target-schema";
import { hasFreePass, noteFreePass } from "../../src/hosts/guard-client";
import { FREE_PASS_MS } from "../../src/hosts/host-guard";
import { claim } from "../../src/runs/changes";
import { newRunRow } from "../../src/runs/new-run";
import type { RunRow } from "../../src/runs/store";
import { countingGuards } from "../helpers/counting-guards";
import { api } from "../helpers/http";
import { received, receiverUrl } from "../helpers/receiver";

function claimedRun(url: string, n: number, now: number): RunRow {
  const run = newRunRow(
    { target: Target.parse({ type: "http", url }), dueAt: now, priority: "default", retry: undefined, timeoutSeconds: 10, requestId: null },
    `guard-asks-${now}-${n}`,
    now,
  );
  const claimed = claim(run, 1, now);
  if (!claimed) throw new Error("the run could not be claimed");
  return claimed;
}

describe("calls made from alarms: asking the host's guard", () => {
  it("calls due together make one ask; its free pass lets the others go", async () => {
    const target = receiverUrl();
    const guards = countingGuards();
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, n) => attemptInPlace(guards.env, claimedRun(target.url, n, now), now)),
    );
    expect(results.every((r) => r.kind === "ran" && r.outcome.status === "succeeded")).toBe(true);
    expect(guards.asks()).toBe(1);
    expect(guards.reports()).toBe(1); // the asking call's release; healthy calls under a fresh pass teach the guard nothing
    expect(await received(target.prefix)).toHaveLength(20);
  });

  it("a pass a quarter through is renewed by one healthy call's report, after its call; a fresh pass is not", async () => {
    const target = receiverUrl();
    const guards = countingGuards();
    const now = Date.now();
    noteFreePass(target.host, now + FREE_PASS_MS * 0.75 - 100);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, n) => attemptInPlace(guards.env, claimedRun(target.url, n, now), now)),
    );
    expect(results.every((r) => r.kind === "ran")).toBe(true);
    expect(guards.asks()).toBe(0);
    expect(guards.reports()).toBe(1);
    expect(hasFreePass(target.host, now + FREE_PASS_MS - 500)).toBe(true);

    await Promise.all(Array.from({ length: 10 }, (_, n) => attemptInPlace(guards.env, claimedRun(target.url, 10 + n, now), now)));
    expect(guards.reports()).toBe(1);
  });

  it("a host with a concurrency cap gives no free pass: each call asks for itself, and the cap holds", async () => {
    const target = receiverUrl("delay_ms=200");
    expect((await api(`/v1/hosts/${target.host}`, { method: "PUT", json: { max_concurrency: 2 } })).status).toBe(200);
    const guards = countingGuards();
    const now = Date.now();
    const results = await Promise.all(Array.from({ length: 5 }, (_, n) => attemptInPlace(guards.env, claimedRun(target.url, n, now), now)));
    expect(guards.asks()).toBe(5);
    expect(results.filter((r) => r.kind === "ran")).toHaveLength(2);
    expect(results.filter((r) => r.kind === "deferred")).toHaveLength(3);
  });
});
