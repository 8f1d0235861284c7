/**
 * How an attempt ended, as a pure function: the executor runs the target and
 * records what this decides. Handlers say what they want by what they throw:
 * PermanentError fails at once (BullMQ's UnrecoverableError), RetryableError
 * asks for a retry (optionally not before its Retry-After), anything else is
 * a failure worth retrying. Retries wait out an exponential backoff with jitter,
 * or the target's Retry-After, never longer than the policy's max_delay.
 */
import { PermanentError, RefusedTargetError, RetryableError } from "../handlers/registry";
import type { CallOutcome } from "../hosts/policy";
import type { AttemptOutcome } from "../runs/store";
import { retryDelaySeconds } from "./backoff";
import type { RetryPolicy } from "./target-schema";

export interface AttemptInput {
  /** The attempt's number, 1 for the first. */
  attempt: number;
  maxAttempts: number;
  retry: RetryPolicy;
  now: number;
  random: () => number;
}

export type AttemptEnd = { ok: true; result: unknown } | { ok: false; error: unknown };

/** What to record for the attempt, and what to tell the host's circuit breaker. */
export interface AttemptVerdict {
  outcome: AttemptOutcome;
  call: CallOutcome;
}

/** Decides the attempt's outcome from how it ended. */
export function classifyAttempt(end: AttemptEnd, input: AttemptInput): AttemptVerdict {
  if (end.ok) return { outcome: { status: "succeeded", result: end.result ?? null }, call: "healthy" };
  const { error } = end;
  const described = { ...describeError(error), attempt: input.attempt };
  // Any answer from the host shows it is up; only a retryable failure counts against it.
  const call: CallOutcome = error instanceof RefusedTargetError ? "not_called" : error instanceof RetryableError ? "failure" : "healthy";
  if (error instanceof PermanentError) return { outcome: { status: "failed", error: described }, call };
  if (input.attempt >= input.maxAttempts) return { outcome: { status: "dead", error: described }, call };
  const delaySeconds = retryDelay(error, input);
  return { outcome: { status: "retrying", error: described, availableAt: input.now + delaySeconds * 1000 }, call };
}

/** Seconds before the next attempt: the backoff, or the target's Retry-After if longer, capped at max_delay. */
function retryDelay(error: unknown, input: AttemptInput): number {
  const backoff = retryDelaySeconds(input.attempt, input.retry, input.random);
  const retryAfter = error instanceof RetryableError ? (error.retryAfterSeconds ?? 0) : 0;
  return Math.min(Math.max(backoff, retryAfter), input.retry.max_delay);
}

/** An error as stored on the run: its message and the details the target gave (status, body excerpt). */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof RetryableError || error instanceof PermanentError) {
    const details = error instanceof RetryableError ? error.details : (error.cause as Record<string, unknown> | undefined);
    return { message: error.message, ...(details ?? {}) };
  }
  return { message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
}
