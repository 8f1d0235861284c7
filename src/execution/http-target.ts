import { PermanentError, RefusedTargetError, RetryableError } from "../handlers/registry";
import { excerpt } from "../runs/bounded";
import { isRetryableStatus, parseRetryAfter } from "./backoff";
import { signatureHeaders } from "./signing";
import { checkTargetUrl } from "./ssrf";
import type { HttpTarget } from "./target-schema";

const MAX_REDIRECTS = 5;
const RESPONSE_EXCERPT_BYTES = 4096;
// What Taskflare itself adds that may follow a redirect anywhere: the id tying the hop to its run.
const CARRIED_TO_ANY_ORIGIN = ["x-request-id"];

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
  // A small body of known length is read in one call (most answers), without making the
  // body's stream object; others stream up to the cap.
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  if (length >= 0 && length <= maxBytes && response.headers.get("content-encoding") === null) {
    try {
      return excerpt(await response.text(), maxBytes);
    } catch {
      return "";
    }
  }
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

/** Whether a redirect turns the request into a GET without a body (303 always; 301/302 after a POST, as browsers do). */
function dropsBody(status: number, method: string): boolean {
  return status === 303 || ((status === 301 || status === 302) && method === "POST");
}

/**
 * What a hop to another origin may carry: the request id, the content type
 * while the body it describes follows (307/308), and the target's headers it
 * names in `forward_headers`. Everything else (credentials above all) was
 * meant for the target's origin only.
 */
function headersForAnotherOrigin(headers: Headers, forward: readonly string[], bodyFollows: boolean): Headers {
  const carried = new Headers();
  const names = [...CARRIED_TO_ANY_ORIGIN, ...forward, ...(bodyFollows ? ["content-type"] : [])];
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) carried.set(name, value);
  }
  return carried;
}

/**
 * Sends an HTTP target: the one place outbound requests leave Taskflare.
 * Redirects are followed by hand so every hop passes the SSRF check. A hop on
 * the target's own origin keeps its headers and is signed again; once a
 * redirect leaves that origin, the rest of the chain carries only what
 * `headersForAnotherOrigin` lets through and is not signed: the signature is
 * for the receiver that holds the secret, and a signed request in a third
 * party's hands could be replayed to it.
 * 2xx succeeds; 408, 429, 5xx and network errors retry; other statuses fail.
 */
export async function sendHttpTarget(target: HttpTarget, ctx: OutboundContext): Promise<HttpResult> {
  const body = encodeBody(target);
  let headers = new Headers(target.headers);
  if (body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", typeof target.body === "string" ? "text/plain; charset=utf-8" : "application/json");
  }
  if (ctx.requestId) headers.set("x-request-id", ctx.requestId);

  let url = target.url;
  let method: string = target.method;
  let sendBody = body;
  let onTargetOrigin = true;
  for (let hop = 0; ; hop++) {
    const checked = checkTargetUrl(url, { allowPrivate: ctx.allowPrivate });
    if (!checked.ok) throw new RefusedTargetError(`refused target: ${checked.reason}`);
    if (ctx.signingSecret && onTargetOrigin) {
      // Signed per hop (a redirect may drop the body); webhook-id is the run id on every hop and attempt.
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
      if (dropsBody(response.status, method)) {
        method = "GET";
        sendBody = undefined;
        headers.delete("content-type");
      }
      if (onTargetOrigin && next.origin !== checked.url.origin) {
        onTargetOrigin = false;
        headers = headersForAnotherOrigin(headers, target.forward_headers ?? [], sendBody !== undefined);
      }
      url = next.toString();
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
