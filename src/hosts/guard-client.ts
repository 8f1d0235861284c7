import type { Env } from "../env";
import type { Target } from "../execution/target-schema";
import { FREE_PASS_MS } from "./host-guard";

/** The host an HTTP run calls (name and port, lower-case), or undefined for other handlers. */
export function hostOf(target: Target): string | undefined {
  const url =
    target.type === "http" ? target.url : target.name === "http" ? (target.args as { url?: unknown } | undefined)?.url : undefined;
  if (typeof url !== "string") return undefined;
  try {
    return new URL(url).host.toLowerCase() || undefined;
  } catch {
    return undefined;
  }
}

/** The HostGuard of a host. */
export function hostGuard(env: Env, host: string) {
  return env.HOST_GUARD.get(env.HOST_GUARD.idFromName(host));
}

/**
 * Hosts this isolate may call without asking their guard, until when (the
 * guard's `freeUntil`). Skipping the ask saves a Durable Object round trip on
 * the way to the target; outcomes are still reported, so failures still count.
 */
const freePasses = new Map<string, number>();

export function hasFreePass(host: string, now: number): boolean {
  return (freePasses.get(host) ?? 0) > now;
}

export function noteFreePass(host: string, until: number | null): void {
  if (until === null) freePasses.delete(host);
  else freePasses.set(host, until);
}

/** The ask of each host's guard this isolate has in flight (settled, never rejecting). */
const asksInFlight = new Map<string, Promise<void>>();

/**
 * The ask of `host`'s guard this isolate has in flight, if any, to wait for. Calls due together
 * (jobs firing in the same second) then make one ask between them: the first one's answer
 * brings the free pass the others go on.
 */
export function askInFlight(host: string): Promise<void> | undefined {
  return asksInFlight.get(host);
}

/** Notes `ask` as the ask of `host`'s guard in flight until it settles; returns it. */
export function noteAsk<T>(host: string, ask: Promise<T>): Promise<T> {
  const settled = ask.then(
    () => undefined,
    () => undefined,
  );
  asksInFlight.set(host, settled);
  void settled.then(() => {
    if (asksInFlight.get(host) === settled) asksInFlight.delete(host);
  });
  return ask;
}

/** A pass older than this is renewed by the next healthy call: a host called every few seconds keeps its pass. */
const RENEW_AFTER_MS = FREE_PASS_MS / 4;

/**
 * Whether `host`'s pass is old enough to renew, with no ask in flight: the next healthy call
 * reports itself, after the call, and the answer renews the pass (a report per host and
 * isolate every RENEW_AFTER_MS at most).
 */
export function passDueForRenewal(host: string, now: number): boolean {
  const until = freePasses.get(host);
  return until !== undefined && until > now && until - now < FREE_PASS_MS - RENEW_AFTER_MS && !asksInFlight.has(host);
}
