import { exports } from "cloudflare:workers";

export const TOKEN = "test-token-0123456789abcdef";
export const BASE = "https://taskflare.test";

/** Calls the Worker's real fetch entry point. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

/** Calls an authenticated /v1 route with a JSON body when one is given. */
export function api(path: string, init: Omit<RequestInit, "body"> & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TOKEN}`);
  let body: string | undefined;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  return call(path, { ...init, headers, body });
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown; request_id: string };
}
