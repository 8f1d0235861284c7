import type { Env } from "../env";
import { log } from "../log";

/** Queue consumer entry: each message names a run; the executor takes it from there. */
export async function consumeBatch(batch: MessageBatch<unknown>, _env: Env): Promise<void> {
  for (const message of batch.messages) {
    log("warn", "queue_message_ignored", { queue: batch.queue, message_id: message.id });
    message.ack();
  }
}
