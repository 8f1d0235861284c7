import type { Env } from "../env";
import { log } from "../log";
import { type RunStatus, WAITING } from "../runs/transitions";
import { dispatchRun, RunMessage, sendOutcome } from "./dispatch";
import { MAX_REDELIVERY_SECONDS } from "./redelivery";
import { batchedRunIo } from "./run-io";

/** A dead letter's work is sent again after this long: the next step of the back-off it ran through. */
export const HANDBACK_DELAY_SECONDS = MAX_REDELIVERY_SECONDS;

/**
 * Hands a dead-lettered message's work back: a waiting run's attempt is sent
 * again, and an attempt's outcome that D1 has not recorded yet travels again.
 * Neither ends the run, since an outage is not a failed attempt. A message
 * for an attempt that already happened changes nothing. Throws while the
 * run's owner (or D1, for its runs) cannot be read, so the dead letter comes back later.
 */
export async function handBackDeadLetter(env: Env, body: unknown, deliveries: number, now: number): Promise<void> {
  const message = RunMessage.safeParse(body);
  if (!message.success) {
    log("warn", "dead_letter_invalid", { body: JSON.stringify(body)?.slice(0, 200) });
    return;
  }
  const { run_id: runId, attempt, outcome } = message.data;
  // Read where the run is kept (its owner, or D1 for runs from before), as the consumer does.
  const run = await batchedRunIo(env).getRun(runId);
  const pending = run
    ? outcome
      ? run.status === "running" && run.attempt === attempt
      : WAITING.includes(run.status as RunStatus) && run.attempt === attempt - 1
    : false;
  log("warn", "dead_letter", { run_id: runId, attempt, deliveries, status: run?.status ?? null, handed_back: pending });
  if (!run || !pending) return;
  if (outcome) await sendOutcome(env, run, outcome, HANDBACK_DELAY_SECONDS);
  else await dispatchRun(env, { ...run, availableAt: Math.max(run.availableAt, now + HANDBACK_DELAY_SECONDS * 1000) }, now);
}
