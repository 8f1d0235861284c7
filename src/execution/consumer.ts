import type { Env } from "../env";
import { log } from "../log";
import { handBackDeadLetter } from "./dead-letters";
import { processRunMessage } from "./executor";
import { redeliveryDelaySeconds } from "./redelivery";
import { batchedRunIo } from "./run-io";

export const DEAD_LETTER_QUEUE = "taskflare-dead-letter";

/** Queue consumer entry: each message starts (at most) one attempt of one run. */
export async function consumeBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.queue.startsWith(DEAD_LETTER_QUEUE)) return consumeDeadLetters(batch, env);
  // Messages run concurrently: one slow target must not hold up the rest of the batch.
  // They share one RunIo, so the D1 and host-guard calls they make together are batched.
  const io = batchedRunIo(env);
  const started = Date.now();
  // Read once: each read of batch.messages decodes every message again.
  const messages = batch.messages;
  let retried = 0;
  await Promise.all(
    messages.map(async (message) => {
      try {
        const disposition = await processRunMessage(env, message.body, io, Date.now(), message.attempts);
        if (disposition === "ack") message.ack();
        else {
          message.retry({ delaySeconds: disposition.retryInSeconds });
          retried++;
        }
      } catch (error) {
        // D1 or a Durable Object failed (an outage, or a bug): the message comes back later,
        // a little later each time, and nothing about the run is decided meanwhile.
        const delaySeconds = redeliveryDelaySeconds(message.attempts);
        log("error", "queue_message_failed", {
          queue: batch.queue,
          message_id: message.id,
          deliveries: message.attempts,
          retry_in_s: delaySeconds,
          error: error instanceof Error ? error.message : String(error),
        });
        message.retry({ delaySeconds });
        retried++;
      }
    }),
  );
  // One line per batch, not per run: at info a healthy flow costs a line per batch
  // (Workers Logs bills per line), and each run's history is in D1.
  log("info", "queue_batch", {
    queue: batch.queue,
    messages: messages.length,
    redelivered: retried,
    ended: io.ended,
    duration_ms: Date.now() - started,
  });
}

/**
 * Messages the run queues gave up on after every redelivery. An outage is not
 * a failed attempt, so each run is handed back to be run, never ended; while
 * D1 is still down the dead letter itself comes back later.
 */
async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await handBackDeadLetter(env, message.body, message.attempts, Date.now());
        message.ack();
      } catch (error) {
        const delaySeconds = redeliveryDelaySeconds(message.attempts);
        log("error", "dead_letter_failed", {
          message_id: message.id,
          deliveries: message.attempts,
          retry_in_s: delaySeconds,
          error: error instanceof Error ? error.message : String(error),
        });
        message.retry({ delaySeconds });
      }
    }),
  );
}
