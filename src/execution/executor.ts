import type { Env } from "../env";
import { errorText, isTransientStorageError } from "../errors";
import { hostOf } from "../hosts/guard-client";
import type { GuardAnswer } from "../hosts/host-guard";
import type { CallOutcome } from "../hosts/policy";
import type { FinishedRun } from "../ledger/run-owner";
import { log } from "../log";
import { EARLY_START_MS } from "../runs/changes";
import { LEASE_GRACE_MS } from "../runs/run-timeout";
import type { RunRow } from "../runs/store";
import { isFinal, type RunStatus } from "../runs/transitions";
import {
  attemptOutcome,
  dispatchRun,
  MAX_QUEUE_DELAY_SECONDS,
  type PendingOutcome,
  pendingOutcome,
  RunMessage,
  sendOutcome,
} from "./dispatch";
import { FIRST_REDELIVERY_SECONDS, redeliveryDelaySeconds, secondsUntilLeaseExpires } from "./redelivery";
import { batchedRunIo, type RunIo } from "./run-io";
import { attemptTarget } from "./run-target";
import type { Target } from "./target-schema";

/**
 * The longest a consumer holds a message that arrived before its run is due:
 * delays are sent rounded down to whole seconds (dispatch.ts), plus a margin
 * for clocks. A message earlier than that is re-sent instead (below).
 */
const MAX_HOLD_MS = 2_000;

/** What the consumer should do with the message: acknowledge it, or have the queue bring it back in so many seconds. */
export type Disposition = "ack" | { retryInSeconds: number };

/**
 * Runs the attempt a message names, if it is still due, or records the
 * outcome it carries; safe to call twice for one message. `deliveries` is the
 * queue's count of this message's deliveries (1 the first time).
 */
export async function processRunMessage(
  env: Env,
  body: unknown,
  io: RunIo = batchedRunIo(env),
  arrivedAt = Date.now(),
  deliveries = 1,
): Promise<Disposition> {
  const message = RunMessage.safeParse(body);
  if (!message.success) {
    log("warn", "queue_message_invalid", { body: JSON.stringify(body)?.slice(0, 200) });
    return "ack";
  }
  if (message.data.outcome) return recordPendingOutcome(env, io, message.data.run_id, message.data.attempt, message.data.outcome);
  let now = arrivedAt;
  const early = (message.data.due_at ?? now) - now;
  if (early > 0 && early <= MAX_HOLD_MS) {
    await scheduler.wait(early);
    now = Date.now();
  }
  // The common case in one step: the message's attempt is due, so claim it (the claim
  // checks every condition below itself). Only a message it does not fit reads the run.
  const claimed = await io.claimRun(message.data.run_id, message.data.attempt, now);
  if (claimed) return startClaimed(env, io, claimed, now, deliveries);
  const run = await io.getRun(message.data.run_id);
  if (!run) return "ack";
  if (isFinal(run.status as RunStatus)) {
    // The message of the attempt that ended, redelivered: its follow-up (lease release,
    // alerts, callbacks) may have failed the first time; all of it is idempotent.
    if (message.data.attempt === run.attempt) await io.followUp(run);
    return "ack";
  }
  if (run.status === "running") {
    // A redelivery while an attempt runs: only an expired lease lets it proceed.
    const reclaimed = await io.reclaimRun(run, now);
    if (reclaimed?.status === "retrying") await dispatchRun(env, reclaimed, now);
    if (reclaimed || message.data.attempt !== run.attempt || run.leaseExpiresAt === null || run.leaseExpiresAt <= now) return "ack";
    // This attempt's answer was lost (the claim's, or the consumer's): whoever holds the
    // lease may still be running it. Come back just after the lease expires and reclaim it then.
    return { retryInSeconds: secondsUntilLeaseExpires(run.leaseExpiresAt, now, MAX_QUEUE_DELAY_SECONDS) };
  }
  if (message.data.attempt === run.attempt) {
    // This attempt already ended; if it is redelivered because sending the
    // next attempt's message failed, send that message now (a duplicate is harmless).
    await dispatchRun(env, run, now);
    return "ack";
  }
  if (message.data.attempt !== run.attempt + 1) return "ack"; // stale: that attempt already happened
  if (run.attempt === 0 && run.expiresAt !== null && now > run.expiresAt) {
    await io.expireRun(run, now);
    return "ack";
  }
  if (run.availableAt > now + EARLY_START_MS) {
    await dispatchRun(env, run, now); // not due yet: a delay longer than the queue allows
    return "ack";
  }
  // Due, but the first claim missed it (it became due or waiting just now): try once more.
  const late = await io.claimRun(run.id, message.data.attempt, Date.now());
  return late ? startClaimed(env, io, late, now, deliveries) : "ack";
}

/**
 * Starts a claimed attempt, if its host's guard lets it call now; otherwise
 * gives the claim back (the attempt is not spent) and re-sends the message
 * for when the guard said to come back.
 */
async function startClaimed(env: Env, io: RunIo, run: RunRow, now: number, deliveries: number): Promise<Disposition> {
  const host = hostOf(run.target as Target);
  let free = false;
  if (host !== undefined) {
    let answer: GuardAnswer & { free: boolean };
    try {
      answer = await io.acquireHost(host, run.id, now, run.timeout * 1000 + LEASE_GRACE_MS);
    } catch (error) {
      // The guard did not answer (an outage is not a failed attempt): give the claim back
      // until this message comes back, so the heartbeat does not take it for lost meanwhile.
      const retryInSeconds = redeliveryDelaySeconds(deliveries);
      log("warn", "host_guard_unavailable", { run_id: run.id, host, retry_in_s: retryInSeconds, error: errorText(error) });
      await io.unclaimRun(run, now + retryInSeconds * 1000, "host guard unavailable", now);
      return { retryInSeconds };
    }
    if (!answer.allowed) {
      const until = answer.until ?? now + 1000;
      const waiting = await io.unclaimRun(run, until, answer.message ?? "deferred by the host guard", now);
      if (waiting) await dispatchRun(env, waiting, now);
      return "ack";
    }
    free = answer.free;
  }
  await executeClaimed(env, io, run, host, free);
  return "ack";
}

async function executeClaimed(env: Env, io: RunIo, run: RunRow, host: string | undefined, free: boolean): Promise<void> {
  const { outcome, call, finishedAt } = await io.attempt(() => attemptTarget(env, run));
  // Reporting to the host's guard and recording the attempt do not depend on each other.
  const [, recorded] = await Promise.allSettled([reportToGuard(io, host, run, call, free), io.finishAttempt(run, outcome, finishedAt)]);
  if (recorded.status === "rejected") {
    if (!isTransientStorageError(recorded.reason)) throw recorded.reason;
    // D1 is down: the outcome travels in a message of its own until D1 takes it, so the
    // target is not called again for an attempt that ran. If even that send fails, this
    // message is redelivered and, once the lease has expired, the attempt is run again.
    log("warn", "attempt_outcome_deferred", {
      run_id: run.id,
      attempt: run.attempt,
      status: outcome.status,
      error: errorText(recorded.reason),
    });
    await sendOutcome(env, run, pendingOutcome(outcome, finishedAt), FIRST_REDELIVERY_SECONDS);
    return;
  }
  await settleRecorded(env, io, run, recorded.value);
}

/**
 * After the UPDATE that records an attempt: `finished` is the run it wrote, or
 * undefined when nothing matched (the run was cancelled or reclaimed
 * meanwhile, or an earlier try applied this very update but its answer was
 * lost). The run's state decides; every follow-up is idempotent.
 */
async function settleRecorded(env: Env, io: RunIo, run: RunRow, finished: FinishedRun | undefined): Promise<void> {
  // A run that ended was followed up as it was recorded; a retrying one needs its next message.
  if (finished) return sendNextAttempt(env, finished);
  const current = await io.getRun(run.id);
  if (current && current.attempt === run.attempt && current.status !== "running") return followUp(env, io, current);
  log("info", "run_result_ignored", { run_id: run.id, attempt: run.attempt, reason: "run is no longer running this attempt" });
}

/** Records an attempt's outcome that D1 could not take when it ended (the message carrying it is redelivered until it does). */
async function recordPendingOutcome(env: Env, io: RunIo, runId: string, attempt: number, pending: PendingOutcome): Promise<Disposition> {
  const run = await io.getRun(runId);
  if (!run || run.attempt !== attempt) return "ack";
  // Already recorded (a try whose answer was lost): only the follow-up may be missing.
  if (run.status !== "running") await followUp(env, io, run);
  else await settleRecorded(env, io, run, await io.finishAttempt(run, attemptOutcome(pending), pending.finished_at));
  return "ack";
}

async function reportToGuard(io: RunIo, host: string | undefined, run: RunRow, call: CallOutcome, free: boolean): Promise<void> {
  if (host === undefined) return;
  try {
    await io.releaseHost(host, run.id, call, free);
  } catch (error) {
    // The guard's hold on this run lapses by itself; the result must still be recorded.
    log("error", "host_guard_release_failed", { run_id: run.id, error: error instanceof Error ? error.message : String(error) });
  }
}

/** A retrying run's next attempt: its message. */
async function sendNextAttempt(env: Env, run: FinishedRun): Promise<void> {
  if (run.status === "retrying") await dispatchRun(env, run, Date.now());
}

/** An attempt recorded by an earlier try whose answer was lost: the follow-up of an ended run (again), or the next attempt's message. */
async function followUp(env: Env, io: RunIo, run: RunRow): Promise<void> {
  if (isFinal(run.status as RunStatus)) await io.followUp(run);
  else await sendNextAttempt(env, run);
}
