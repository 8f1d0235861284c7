/**
 * One attempt of a claimed run, made where its owner lives (a JobObject's
 * alarm, for a job whose target answers fast): the host's guard is asked,
 * the target called, and how it ended classified, as the queue consumer does,
 * without a queue message or a round trip to an owner.
 */
import type { Env } from "../env";
import {
  askInFlight,
  asking,
  hasFreePass,
  hostGuard,
  hostOf,
  noteFreePass,
  noteReported,
  passFromAskInFlight,
  reportTeachesGuard,
} from "../hosts/guard-client";
import type { GuardAnswer } from "../hosts/host-guard";
import type { CallOutcome } from "../hosts/policy";
import { log } from "../log";
import { LEASE_GRACE_MS } from "../runs/run-timeout";
import type { AttemptOutcome, RunRow } from "../runs/store";
import { attemptTarget } from "./run-target";
import type { Target } from "./target-schema";

export type AttemptResult =
  | { kind: "ran"; outcome: AttemptOutcome; finishedAt: number }
  /** The host's guard said wait (or did not answer): the attempt was not made and is not spent. */
  | { kind: "deferred"; until: number; reason: string };

/** How long an attempt waits when the host's guard does not answer. */
const GUARD_UNAVAILABLE_WAIT_MS = 2_000;

/** Makes the attempt of `run` (already claimed: status running) and says how it ended. */
export async function attemptInPlace(env: Env, run: RunRow, now: number): Promise<AttemptResult> {
  const host = hostOf(run.target as Target);
  let free = host !== undefined && hasFreePass(host, now);
  // Checked before any await: the first of calls due together must note its ask before the next one looks.
  if (host !== undefined && !free && askInFlight(host, Date.now())) free = await passFromAskInFlight(host);
  if (host !== undefined && !free) {
    try {
      const answer = await asking(host, () => ask(env, host, run));
      if (!answer.allowed)
        return { kind: "deferred", until: answer.until ?? now + 1000, reason: answer.message ?? "deferred by the host guard" };
    } catch (error) {
      log("warn", "host_guard_unavailable", { run_id: run.id, host, error: error instanceof Error ? error.message : String(error) });
      return { kind: "deferred", until: now + GUARD_UNAVAILABLE_WAIT_MS, reason: "host guard unavailable" };
    }
  }
  const { outcome, call, finishedAt } = await attemptTarget(env, run);
  if (host !== undefined) await report(env, host, run.id, call, free);
  return { kind: "ran", outcome, finishedAt };
}

/** Asks the host's guard for the run's call and notes the free pass its answer brings. */
async function ask(env: Env, host: string, run: RunRow): Promise<GuardAnswer> {
  const [answer] = await hostGuard(env, host).acquireMany(host, [{ runId: run.id, holdMs: run.timeout * 1000 + LEASE_GRACE_MS }]);
  if (!answer) throw new Error("the host guard gave no answer");
  noteFreePass(host, answer.freeUntil);
  return answer;
}

/**
 * Tells the host's guard how the call went, unless it learns nothing from it (a healthy call
 * under a free pass that needs no renewal). Callers without a pass wait for this report as
 * for an ask: its answer is the pass.
 */
async function report(env: Env, host: string, runId: string, call: CallOutcome, free: boolean): Promise<void> {
  if (!reportTeachesGuard(host, call, free, Date.now())) return;
  const release = async () => noteFreePass(host, await hostGuard(env, host).releaseMany([{ runId, outcome: call }]));
  try {
    await asking(host, release);
    noteReported(host, call);
  } catch (error) {
    // The guard's hold on this run lapses by itself; the result must still be recorded.
    log("error", "host_guard_release_failed", { run_id: runId, error: error instanceof Error ? error.message : String(error) });
  }
}
