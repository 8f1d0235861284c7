import { createMiddleware } from "hono/factory";
import { readConfig } from "../env";
import { ApiError } from "../errors";
import type { AppEnv } from "./types";

const encoder = new TextEncoder();

/** Compares two secrets in constant time (hashing first equalises their lengths). */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(presented)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Extracts the credential of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i);
  return match?.[1];
}

/** The password of an `Authorization: Basic` header (the username is ignored). */
export function basicPassword(header: string | undefined): string | undefined {
  const match = header?.match(/^Basic +([A-Za-z0-9+/]+=*) *$/i);
  if (!match?.[1]) return undefined;
  try {
    const decoded = atob(match[1]);
    const colon = decoded.indexOf(":");
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  } catch {
    return undefined;
  }
}

type Scheme = "bearer" | "basic";
const challenges: Record<Scheme, string> = { bearer: 'Bearer realm="taskflare"', basic: 'Basic realm="taskflare", charset="UTF-8"' };

/**
 * Requires the API token, as a bearer token (and, where `basic` is allowed,
 * as the password of HTTP Basic so a browser can prompt for it). With no
 * token configured, only a local `wrangler dev` session (flagged in
 * `.dev.vars`) is served; a deployment without a token refuses.
 */
export function requireAuth(schemes: Scheme[]) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const config = readConfig(c.env);
    if (!config.apiToken) {
      if (config.localDevelopment) return next();
      throw new ApiError("unavailable", "API_TOKEN is not configured; the API is disabled until it is set");
    }
    const header = c.req.header("authorization");
    const presented = bearerToken(header) ?? (schemes.includes("basic") ? basicPassword(header) : undefined);
    const challenge = challenges[schemes.includes("basic") ? "basic" : "bearer"];
    if (!presented) throw new ApiError("unauthorized", "Missing credentials", undefined, { "WWW-Authenticate": challenge });
    // Every accepted token is compared, so timing cannot tell which one matched.
    const matches = await Promise.all(config.apiTokens.map((token) => secretsEqual(presented, token)));
    if (!matches.some(Boolean)) {
      throw new ApiError("unauthorized", "Invalid token", undefined, {
        "WWW-Authenticate": schemes.includes("basic") ? challenge : `${challenge}, error="invalid_token"`,
      });
    }
    return next();
  });
}

/** Bearer-token auth for /v1 and /metrics. */
export const requireToken = requireAuth(["bearer"]);
