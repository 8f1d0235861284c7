import type { Env } from "../env";
import type { RunRow } from "../runs/store";

/** A queue message names a run and the attempt it should start; the payload stays in D1. */
export interface RunMessage {
  run_id: string;
  attempt: number;
  /** When the attempt is due (epoch ms), on a message sent ahead of it: the consumer holds it if it arrives early. */
  due_at?: number;
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
