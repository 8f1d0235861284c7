import type { Env } from "../env";
import type { Target } from "../execution/target-schema";

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
