import { createMiddleware } from "hono/factory";
import { readConfig } from "../env";
import { ApiError } from "../errors";
import type { AppEnv } from "./types";

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="taskflare"' };
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

/**
 * Requires the API token. With none configured, only a local `wrangler dev`
 * session (flagged in `.dev.vars`) is served; a deployment without a token refuses.
 */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const config = readConfig(c.env);
  if (!config.apiToken) {
    if (config.localDevelopment) return next();
    throw new ApiError("unavailable", "API_TOKEN is not configured; the API is disabled until it is set");
  }
  const presented = bearerToken(c.req.header("authorization"));
  if (!presented) throw new ApiError("unauthorized", "Missing bearer token", undefined, CHALLENGE);
  if (!(await secretsEqual(presented, config.apiToken))) {
    throw new ApiError("unauthorized", "Invalid bearer token", undefined, {
      "WWW-Authenticate": 'Bearer realm="taskflare", error="invalid_token"',
    });
  }
  return next();
});
