import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  type MessageBatchMessage,
  type QueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";

/** Drives the Worker's `scheduled` entry point as the Cron Trigger would. */
export async function runScheduled(scheduledTime: number, cron = "* * * * *"): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime, cron }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** Drives the Worker's `queue` entry point with one batch and returns what it acked or retried. */
export async function runQueue<Body>(queue: string, messages: MessageBatchMessage<Body>[]): Promise<QueueResult> {
  const batch = createMessageBatch(queue, messages);
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  return getQueueResult(batch, ctx);
}
