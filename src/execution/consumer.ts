import { database } from "../db/client";
import type { Env } from "../env";
import { log } from "../log";
import { markUndeliverable } from "../runs/store";
import { processRunMessage } from "./executor";
import { onRunFinished } from "./finished";
import { batchedRunIo } from "./run-io";

export const DEAD_LETTER_QUEUE = "taskflare-dead-letter";

/** Redelivery delay after an infrastructure error (D1 or Queue hiccup) while handling a message. */
const REDELIVERY_DELAY_SECONDS = 2;

/** Queue consumer entry: each message starts (at most) one attempt of one run. */
export async function consumeBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.queue.startsWith(DEAD_LETTER_QUEUE)) return consumeDeadLetters(batch, env);
  // Messages run concurrently: one slow target must not hold up the rest of the batch.
  // They share one RunIo, so the D1 and host-guard calls they make together are batched.
  const io = batchedRunIo(env);
  const started = Date.now();
  let retried = 0;
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await processRunMessage(env, message.body, io);
        message.ack();
      } catch (error) {
        log("error", "queue_message_failed", {
          queue: batch.queue,
          message_id: message.id,
          error: error instanceof Error ? error.message : String(error),
        });
        message.retry({ delaySeconds: REDELIVERY_DELAY_SECONDS });
        retried++;
      }
    }),
  );
  // One line per batch, not per run: at info a healthy flow costs a line per batch
  // (Workers Logs bills per line), and each run's history is in D1.
  log("info", "queue_batch", {
    queue: batch.queue,
    messages: batch.messages.length,
    redelivered: retried,
    ended: io.ended,
    duration_ms: Date.now() - started,
  });
}

/** A message that exhausted the queue's own retries: its run cannot be delivered, so it is dead. */
async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const db = database(env.DB);
  for (const message of batch.messages) {
    const body = message.body as { run_id?: unknown; attempt?: unknown } | null;
    const runId = typeof body?.run_id === "string" ? body.run_id : undefined;
    const attempt = typeof body?.attempt === "number" ? body.attempt : 1;
    log("error", "dead_letter", { message_id: message.id, run_id: runId, attempts: message.attempts });
    if (runId) {
      const dead = await markUndeliverable(db, runId, attempt, Date.now(), `message dead-lettered after ${message.attempts} deliveries`);
      if (dead) await onRunFinished(env, dead);
    }
    message.ack();
  }
}
