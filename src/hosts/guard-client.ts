import type { Env } from "../env";
import type { Target } from "../execution/target-schema";

/** The host an HTTP run calls (name and port, lower-case), or undefined for other handlers. */
export function hostOf(target: Target): string | undefined {
  const url = target.type === "http" ? target.url : target.name === "http" ? (target.args as { url?: unknown } | undefined)?.url : undefined;
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
