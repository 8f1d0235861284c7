import type { Env } from "../env";
import type { Target } from "../execution/target-schema";
import { FREE_PASS_MS } from "./host-guard";
import type { CallOutcome } from "./policy";

/** The host an HTTP run calls (name and port, lower-case), or undefined for other handlers. */
export function hostOf(target: Target): string | undefined {
  const url =
    target.type === "http" ? target.url : target.name === "http" ? (target.args as { url?: unknown } | undefined)?.url : undefined;
  if (typeof url !== "string") return undefined;
  let host = hostsByUrl.get(url);
  if (host === undefined) {
    if (hostsByUrl.size >= HOSTS_REMEMBERED) hostsByUrl.clear();
    host = parsedHost(url);
    hostsByUrl.set(url, host);
  }
  return host || undefined;
}

/** Hosts by target URL ('' for none): most runs call a few URLs, and parsing one costs more than the lookup. */
const hostsByUrl = new Map<string, string>();
const HOSTS_REMEMBERED = 1_000;

function parsedHost(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return "";
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

/** Since when a request of this isolate has been asking each host's guard (an ask, or a report that renews the pass). */
const askingSince = new Map<string, number>();
/** An ask older than this is taken for lost: callers stop waiting for it. */
const ASK_LOST_MS = 1_000;
/** How often a caller waiting for another's ask looks for the pass it brings. */
const ASK_POLL_MS = 5;

/** Whether a request of this isolate is asking `host`'s guard. */
export function askInFlight(host: string, now: number): boolean {
  const since = askingSince.get(host);
  return since !== undefined && now - since < ASK_LOST_MS;
}

/** Runs `ask` (a call to `host`'s guard) noted as in flight, so calls due together wait for it instead of each asking. */
export async function asking<T>(host: string, ask: () => Promise<T>): Promise<T> {
  const started = Date.now();
  askingSince.set(host, started);
  try {
    return await ask();
  } finally {
    if (askingSince.get(host) === started) askingSince.delete(host);
  }
}

/**
 * Waits while another request of this isolate asks `host`'s guard, and says whether its answer
 * brought a pass. Calls due together (jobs firing in the same second) then make one ask between
 * them. It looks every few milliseconds rather than awaiting the other's ask: a request cannot
 * wait on another one's I/O.
 */
export async function passFromAskInFlight(host: string): Promise<boolean> {
  while (askInFlight(host, Date.now())) {
    await new Promise((resolve) => setTimeout(resolve, ASK_POLL_MS));
    if (hasFreePass(host, Date.now())) return true;
  }
  return hasFreePass(host, Date.now());
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
  return until !== undefined && until > now && until - now < FREE_PASS_MS - RENEW_AFTER_MS && !askInFlight(host, now);
}

/**
 * Hosts whose last outcome this isolate reported was not healthy: their guard needs to hear
 * the next healthy call, to reset its count.
 */
const reportedTrouble = new Set<string>();

/**
 * Whether a call's guard learns anything from its report. A healthy call made under a free
 * pass teaches a closed circuit with no cap nothing, unless the last report was trouble (the
 * count must reset) or the pass is due for renewal (the report's answer renews it).
 */
export function reportTeachesGuard(host: string, call: CallOutcome, free: boolean, now: number): boolean {
  return !free || call !== "healthy" || reportedTrouble.has(host) || passDueForRenewal(host, now);
}

/** Notes a report the guard took, for reportTeachesGuard. */
export function noteReported(host: string, call: CallOutcome): void {
  if (call === "healthy") reportedTrouble.delete(host);
  else reportedTrouble.add(host);
}
