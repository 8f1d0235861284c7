import type { z } from "@hono/zod-openapi";
import type { Env } from "../env";

/** What a handler gets besides its arguments. */
export interface HandlerContext {
  env: Env;
  runId: string;
  attempt: number;
  requestId: string | null;
  /** Aborted when the run's timeout passes. */
  signal: AbortSignal;
}

/** A named function with a zod schema for its arguments. */
export interface Handler<Schema extends z.ZodType = z.ZodType> {
  name: string;
  args: Schema;
  description: string;
  run(args: z.infer<Schema>, ctx: HandlerContext): Promise<unknown>;
}

/** Declares a handler; the type of `run`'s arguments follows from the schema. */
export function defineHandler<Schema extends z.ZodType>(handler: Handler<Schema>): Handler<Schema> {
  return handler;
}

/** Thrown by a handler to fail at once, without retries (BullMQ's UnrecoverableError). */
export class PermanentError extends Error {
  override name = "PermanentError";
}

/** Thrown to ask for a retry, optionally no sooner than `retryAfterSeconds`. */
export class RetryableError extends Error {
  override name = "RetryableError";
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** A target refused before any call was made (the SSRF rules): fails without retries, and its host was never called. */
export class RefusedTargetError extends PermanentError {
  override name = "RefusedTargetError";
}
