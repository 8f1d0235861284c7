import { z } from "@hono/zod-openapi";
import type { Env } from "../env";
import { bounded } from "../runs/bounded";
import type { AttemptOutcome, RunRow } from "../runs/store";

/**
 * How an attempt ended, when D1 could not record it as it ended: the
 * message carries it until D1 takes it, so the target is not called again.
 */
const PendingOutcome = z.object({
  status: z.enum(["succeeded", "failed", "dead", "retrying"]),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
  /** When a retrying run's next attempt is due (epoch ms). */
  available_at: z.number().int().optional(),
  /** When the attempt ended (epoch ms): its finish time and duration, however late it is recorded. */
  finished_at: z.number().int(),
});
export type PendingOutcome = z.infer<typeof PendingOutcome>;

/**
 * A queue message names a run and the attempt it should start; the payload
 * stays in D1. `due_at` (epoch ms) is on a message sent ahead of its attempt:
 * the consumer holds it if it arrives early. `outcome` is on a message that
 * records an attempt that already ran.
 */
export const RunMessage = z.object({
  run_id: z.string().min(1).max(100),
  attempt: z.number().int().min(1),
  due_at: z.number().int().optional(),
  outcome: PendingOutcome.optional(),
});
export type RunMessage = z.infer<typeof RunMessage>;

/** An attempt's outcome as a message carries it (results bounded as D1 stores them, so it fits a message). */
export function pendingOutcome(outcome: AttemptOutcome, finishedAt: number): PendingOutcome {
  if (outcome.status === "succeeded") return { status: "succeeded", result: bounded(outcome.result), finished_at: finishedAt };
  const error = bounded(outcome.error);
  if (outcome.status === "retrying") return { status: "retrying", error, available_at: outcome.availableAt, finished_at: finishedAt };
  return { status: outcome.status, error, finished_at: finishedAt };
}

/** The outcome a message carries, as the run store records it. */
export function attemptOutcome(pending: PendingOutcome): AttemptOutcome {
  if (pending.status === "succeeded") return { status: "succeeded", result: pending.result ?? null };
  if (pending.status === "retrying") {
    return { status: "retrying", error: pending.error ?? null, availableAt: pending.available_at ?? pending.finished_at };
  }
  return { status: pending.status, error: pending.error ?? null };
}

/** Sends the message that carries an attempt's outcome until D1 records it. */
export async function sendOutcome(
  env: Env,
  run: Pick<RunRow, "id" | "attempt" | "priority">,
  outcome: PendingOutcome,
  delaySeconds: number,
): Promise<void> {
  const body: RunMessage = { run_id: run.id, attempt: run.attempt, outcome };
  await queueFor(env, run.priority).send(body, { delaySeconds, contentType: "json" });
}

/**
 * Queues cap how long a message can be delayed (24 h at the time of writing);
 * Taskflare stays at 12 h. A run due later is sent with this delay and re-sent
 * on arrival until it is due, so any delay runs on time.
 */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** The queue a priority maps to: high work has its own queue and consumer. */
export function queueFor(env: Env, priority: string): Queue<unknown> {
  return priority === "high" ? env.HIGH_QUEUE : env.TASK_QUEUE;
}

/**
 * Seconds to delay a message, within the queue's limit. Delays are whole
 * seconds, so it is rounded down: the message arrives up to a second before
 * the run is due, and the consumer holds it for the rest (its `due_at`),
 * where rounding up would start the run up to a second late.
 */
export function deliveryDelaySeconds(availableAt: number, now: number): number {
  const seconds = Math.floor((availableAt - now) / 1000);
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, seconds));
}

/** Sends the message that will start the run's next attempt. */
export async function dispatchRun(env: Env, run: Pick<RunRow, "id" | "attempt" | "priority" | "availableAt">, now: number): Promise<void> {
  await dispatchRuns(env, [run], now);
}

/** A queue takes at most this many messages per sendBatch. */
const MAX_SEND_BATCH = 100;

/** dispatchRun for many runs: one sendBatch per queue. */
export async function dispatchRuns(
  env: Env,
  runs: Pick<RunRow, "id" | "attempt" | "priority" | "availableAt">[],
  now: number,
): Promise<void> {
  const byQueue = new Map<Queue<unknown>, MessageSendRequest<RunMessage>[]>();
  for (const run of runs) {
    const queue = queueFor(env, run.priority);
    const messages = byQueue.get(queue) ?? [];
    const body: RunMessage = { run_id: run.id, attempt: run.attempt + 1, ...(run.availableAt > now ? { due_at: run.availableAt } : {}) };
    messages.push({ body, delaySeconds: deliveryDelaySeconds(run.availableAt, now), contentType: "json" });
    byQueue.set(queue, messages);
  }
  const sends: Promise<unknown>[] = [];
  for (const [queue, messages] of byQueue) {
    for (let i = 0; i < messages.length; i += MAX_SEND_BATCH) sends.push(queue.sendBatch(messages.slice(i, i + MAX_SEND_BATCH)));
  }
  await Promise.all(sends);
}
