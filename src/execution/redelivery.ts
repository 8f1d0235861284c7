/**
 * How long a queue message that could not be handled waits before it comes
 * back. Storage outages last seconds to many minutes, so the wait doubles
 * (2, 4, 8 … s) up to five minutes, and the queue's own retry limit covers
 * over an hour of them: an outage defers work, it never ends it.
 */

/** The run queues' `max_retries` in wrangler.toml (a test checks they agree). */
export const MAX_REDELIVERIES = 20;

/** The wait after a message's first failed delivery. */
export const FIRST_REDELIVERY_SECONDS = 2;

/** The longest wait between two deliveries. */
export const MAX_REDELIVERY_SECONDS = 300;

/** Seconds before a message whose `deliveries`-th delivery failed (the queue's `attempts`, 1 on the first) comes back. */
export function redeliveryDelaySeconds(deliveries: number): number {
  const failed = Number.isFinite(deliveries) ? Math.max(1, Math.floor(deliveries)) : 1;
  // 2 ** 30 s is far past the cap; the exponent is bounded so it cannot overflow.
  return Math.min(MAX_REDELIVERY_SECONDS, FIRST_REDELIVERY_SECONDS * 2 ** Math.min(failed - 1, 30));
}

/** Seconds from a message's first delivery to its last, when every delivery fails (`retries` waits). */
export function redeliveryWindowSeconds(retries = MAX_REDELIVERIES): number {
  let total = 0;
  for (let deliveries = 1; deliveries <= retries; deliveries++) total += redeliveryDelaySeconds(deliveries);
  return total;
}

/**
 * Seconds until just after a lease expires: a message that found its run
 * still running under a live lease comes back then and, if the lease did
 * lapse, reclaims the run itself. At least one second; at most the queue's delay limit.
 */
export function secondsUntilLeaseExpires(leaseExpiresAt: number, now: number, maxDelaySeconds: number): number {
  return Math.min(maxDelaySeconds, Math.max(1, Math.ceil((leaseExpiresAt - now) / 1000) + 1));
}

/**
 * A waiting run this far past due has lost its queue message, and is sent again.
 * A run merely waiting behind a long backlog gets a duplicate, which costs one
 * claim that misses; a run is re-sent at most once per window.
 */
export const LOST_MESSAGE_MS = 60_000;

/**
 * An attempt whose lease expired is left alone this much longer before it is taken
 * back. An attempt that ran while its result could not be recorded has that result in
 * a queue message, which comes back at most MAX_REDELIVERY_SECONDS apart: it must be
 * recorded, not run again.
 */
export const OUTCOME_GRACE_MS = MAX_REDELIVERY_SECONDS * 1000 + 60_000;
