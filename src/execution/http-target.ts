import { PermanentError, RefusedTargetError, RetryableError } from "../handlers/registry";
import { excerpt } from "../runs/bounded";
import { isRetryableStatus, parseRetryAfter } from "./backoff";
import { signatureHeaders } from "./signing";
import { checkTargetUrl } from "./ssrf";
import type { HttpTarget } from "./target-schema";

const MAX_REDIRECTS = 5;
const RESPONSE_EXCERPT_BYTES = 4096;
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

export interface OutboundContext {
  runId: string;
  requestId: string | null;
  signal: AbortSignal;
  signingSecret: string | undefined;
  allowPrivate: boolean;
  now: () => number;
}

export interface HttpResult {
  status: number;
  body: string;
  content_type: string | null;
}

/** Reads at most `maxBytes` of a response body and drops the rest, so a huge answer cannot exhaust memory. */
async function readExcerpt(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size <= maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut off mid-stream still leaves what arrived.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const joined = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return excerpt(new TextDecoder().decode(joined), maxBytes);
}

function encodeBody(target: HttpTarget): string | undefined {
  if (target.body === undefined || target.method === "GET" || target.method === "HEAD") return undefined;
  return typeof target.body === "string" ? target.body : JSON.stringify(target.body);
}

/**
 * Sends an HTTP target: the one place outbound requests leave Taskflare.
 * Redirects are followed by hand so every hop passes the SSRF check.
 * 2xx succeeds; 408, 429, 5xx and network errors retry; other statuses fail.
 */
export async function sendHttpTarget(target: HttpTarget, ctx: OutboundContext): Promise<HttpResult> {
  const body = encodeBody(target);
  const headers = new Headers(target.headers);
  if (body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", typeof target.body === "string" ? "text/plain; charset=utf-8" : "application/json");
  }
  if (ctx.requestId) headers.set("x-request-id", ctx.requestId);

  let url = target.url;
  let method: string = target.method;
  let sendBody = body;
  for (let hop = 0; ; hop++) {
    const checked = checkTargetUrl(url, { allowPrivate: ctx.allowPrivate });
    if (!checked.ok) throw new RefusedTargetError(`refused target: ${checked.reason}`);
    if (ctx.signingSecret) {
      // Signed per hop (a redirect may drop the body); webhook-id is the run id on every attempt.
      const signed = await signatureHeaders(ctx.signingSecret, ctx.runId, Math.floor(ctx.now() / 1000), sendBody ?? "");
      for (const [name, value] of Object.entries(signed)) headers.set(name, value);
    }
    let response: Response;
    try {
      response = await fetch(checked.url.toString(), { method, headers, body: sendBody, redirect: "manual", signal: ctx.signal });
    } catch (error) {
      if (ctx.signal.aborted) throw new RetryableError("timed out waiting for the target");
      throw new RetryableError(`network error: ${error instanceof Error ? error.message : String(error)}`);
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new PermanentError(`more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, checked.url);
      // Credentials meant for the target must not follow it to another origin.
      if (next.origin !== checked.url.origin) for (const name of CREDENTIAL_HEADERS) headers.delete(name);
      url = next.toString();
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
        method = "GET";
        sendBody = undefined;
        headers.delete("content-type");
      }
      continue;
    }
    const text = await readExcerpt(response, RESPONSE_EXCERPT_BYTES);
    const result = { status: response.status, body: text, content_type: response.headers.get("content-type") };
    if (response.ok) return result;
    const detail = { status: response.status, body: text };
    if (isRetryableStatus(response.status)) {
      throw new RetryableError(
        `target answered ${response.status}`,
        parseRetryAfter(response.headers.get("retry-after"), ctx.now()),
        detail,
      );
    }
    throw new PermanentError(`target answered ${response.status}`, { cause: detail });
  }
}
