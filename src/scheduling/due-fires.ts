/**
 * Which fires of a trigger are due: pure trigger maths over epoch milliseconds.
 * An alarm asks only for the fires between its pending fire and now, lazily,
 * never for a long list of future fires.
 */
import { nextFireTimes, type ResolvedTrigger } from "./triggers";

/** How many fires one enumeration step asks croner for. */
const STEP = 16;

/** Due fires, oldest first, and the fire that follows the last of them (undefined when the trigger is done). */
export interface DueFires {
  due: number[];
  next: number | undefined;
}

/**
 * The pending fire (`pending`, the one the clock waits for, itself due when <= now) and the
 * trigger's fires after it up to `now`, oldest first, at most `limit`. `next` is the fire after
 * the last one listed: after now, or still due when the limit cut a backlog short (the caller
 * handles the rest in its next round).
 */
export function dueFires(trigger: ResolvedTrigger, pending: number, now: number, limit: number): DueFires {
  if (pending > now) return { due: [], next: pending };
  if (limit < 1) return { due: [], next: pending };
  const due = [pending];
  let cursor = pending;
  for (;;) {
    const batch = nextFireTimes(trigger, cursor, STEP);
    if (batch.length === 0) return { due, next: undefined };
    for (const fire of batch) {
      if (fire > now || due.length >= limit) return { due, next: fire };
      due.push(fire);
    }
    cursor = batch[batch.length - 1] ?? cursor;
  }
}

/**
 * The latest due fire: the last of the trigger's fires after `pending` up to `now`, or `pending`
 * itself (undefined when it is not due yet). With coalesce a backlog runs once, at its latest
 * fire, however long the backlog: this looks back from now in doubling windows, so a long
 * backlog costs a few steps, and an interval's latest fire is plain arithmetic.
 */
export function latestDueFire(trigger: ResolvedTrigger, pending: number, now: number): number | undefined {
  if (pending > now) return undefined;
  if (trigger.type === "interval" && trigger.startMs !== undefined && trigger.intervalMs >= 1000) {
    return Math.max(pending, latestIntervalFire(trigger, now) ?? pending);
  }
  for (let window = 60_000; ; window *= 2) {
    const start = Math.max(pending, now - window);
    const { due } = dueFires(trigger, start, now, Number.POSITIVE_INFINITY);
    // `start` itself is listed as due whether or not it is a fire; only `pending` is known to be one.
    const fires = start === pending ? due : due.slice(1);
    const latest = fires[fires.length - 1];
    if (latest !== undefined) return latest;
    if (start === pending) return pending;
  }
}

/** Interval fires are arithmetic: the latest one at or before now, without enumerating the backlog. */
function latestIntervalFire(trigger: ResolvedTrigger & { type: "interval" }, now: number): number | undefined {
  const anchor = trigger.startMs;
  if (anchor === undefined) return undefined;
  const last = trigger.endMs === undefined ? now : Math.min(now, trigger.endMs);
  if (last < anchor) return undefined;
  return anchor + Math.floor((last - anchor) / trigger.intervalMs) * trigger.intervalMs;
}
