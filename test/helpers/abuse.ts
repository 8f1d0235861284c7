/// <reference types="vite/client" />
// Loaded as text: the corpus holds raw U+2028/U+2029 characters, and a plain
// JSON import of it fails to evaluate in the workerd module runner.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import worker from "../../src/index";
import corpusText from "../corpora/abuse-corpus.json?raw";
import { BASE, TOKEN } from "./http";

/** A huge body the corpus stores as a small recipe; the checker expands it. */
export type GeneratedBody =
  | { generate: "repeat"; template: string; unit: string; count: number; join?: string }
  | { generate: "deep"; template: string; open: string; inner: string; close: string; depth: number }
  | { generate: "keys"; template: string; count: number; value: string }
  | { generate: "pad"; template: string; total: number };

/** The expectation kinds of the corpus (see test/corpora/README.md). */
export type Expectation = "4xx-json" | "400" | "401" | "413" | "not-500";

/** One hostile request of test/corpora/abuse-corpus.json. */
export interface AbuseCase {
  id: string;
  category: string;
  method: string;
  path: string;
  headers?: Record<string, string | string[] | null>;
  body?: string | GeneratedBody;
  body_base64?: string;
  expect: Expectation;
  auth?: false;
  chunked?: true;
  fixture?: true;
  note: string;
}

/** Every case of the corpus, in file order. */
export const abuseCases: AbuseCase[] = JSON.parse(corpusText) as AbuseCase[];

const HOLE = "__HOLE__";
const encoder = new TextEncoder();

/** Per-run values that replace the corpus placeholders. */
export interface Placeholders {
  /** Fresh per test run, so ids never collide with an earlier run. */
  run: string;
  /** The id of an existing paused job. */
  fixture: string;
}

/**
 * The token variants named in gen.mjs: one byte shorter, one byte longer, and
 * the last byte changed (flipped to its neighbour, so the length is kept).
 */
export function tokenVariants(token: string): Record<string, string> {
  const last = token.charCodeAt(token.length - 1);
  return {
    "{TOKEN_SHORT}": token.slice(0, -1),
    "{TOKEN_LONG}": `${token}x`,
    "{TOKEN_FLIP}": token.slice(0, -1) + String.fromCharCode(last ^ 1),
    "{TOKEN}": token,
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The corpus spells raw header bytes as Latin-1 characters (gen.mjs: UTF-8 bytes
 * "sent raw"). workerd encodes a non-ASCII header string as UTF-8, so a value whose
 * bytes are valid UTF-8 is handed over decoded, and workerd sends exactly those bytes.
 */
export function headerValue(latin1: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range is what is being tested.
  if (!/[\u0080-\u00ff]/.test(latin1) || /[^\u0000-\u00ff]/.test(latin1)) return latin1;
  try {
    return strictUtf8.decode(Uint8Array.from(latin1, (ch) => ch.charCodeAt(0)));
  } catch {
    return latin1;
  }
}

/** Replaces every placeholder in one string (longer token names first, so `{TOKEN}` cannot eat them). */
export function substitute(text: string, p: Placeholders): string {
  let out = text.replaceAll("{RUN}", p.run).replaceAll("{FIXTURE}", p.fixture);
  for (const [name, value] of Object.entries(tokenVariants(TOKEN))) out = out.replaceAll(name, value);
  return out;
}

/** Expands a generated body recipe into its bytes; placeholders are filled first, so `pad` measures the final body. */
export function expandGenerated(spec: GeneratedBody, p: Placeholders): Uint8Array {
  const template = substitute(spec.template, p);
  const fill = (filler: string) => encoder.encode(template.replace(HOLE, () => filler));
  switch (spec.generate) {
    case "repeat":
      return fill(Array.from({ length: spec.count }, () => spec.unit).join(spec.join ?? ""));
    case "deep":
      return fill(spec.open.repeat(spec.depth) + spec.inner + spec.close.repeat(spec.depth));
    case "keys":
      return fill(Array.from({ length: spec.count }, (_, i) => `"k${i}":${spec.value}`).join(","));
    case "pad": {
      // pads the hole with ASCII so the whole body is exactly `total` bytes
      const frame = encoder.encode(template).length - HOLE.length;
      if (frame > spec.total) throw new Error(`pad template is already ${frame} bytes, over ${spec.total}`);
      return fill("a".repeat(spec.total - frame));
    }
  }
}

function base64Bytes(b64: string): Uint8Array {
  const raw = atob(b64);
  return Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
}

/** The raw body bytes a case sends, or undefined when it sends none. */
export function bodyBytes(c: AbuseCase, p: Placeholders): Uint8Array | undefined {
  if (c.body_base64 !== undefined) return base64Bytes(c.body_base64);
  if (c.body === undefined) return undefined;
  if (typeof c.body === "string") return encoder.encode(substitute(c.body, p));
  return expandGenerated(c.body, p);
}

/** Streams bytes in 64 KiB chunks, so the request carries no Content-Length. */
function chunkedStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + 65536));
      offset += 65536;
    },
  });
}

/**
 * A view of `carrier` that reports another method. workerd's Request refuses a
 * body on GET/HEAD, yet a network client can send one and the Worker then sees it.
 */
function withMethod(carrier: Request, method: string): Request<unknown, IncomingRequestCfProperties> {
  // The proxy stands in for an incoming request, which carries no `cf` here either.
  return new Proxy(carrier as Request<unknown, IncomingRequestCfProperties>, {
    get(target, key) {
      if (key === "method") return method;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Sends the request a case describes to the Worker's fetch entry point: the default
 * `Authorization: Bearer <TOKEN>` unless `auth: false`; a body defaults to
 * `content-type: application/json` unless the case names a content type (`null`
 * there means: send none).
 */
export async function deliver(c: AbuseCase, p: Placeholders): Promise<Response> {
  const headers = new Headers();
  if (c.auth !== false) headers.set("authorization", `Bearer ${TOKEN}`);
  const named = Object.keys(c.headers ?? {}).map((k) => k.toLowerCase());
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === null) continue;
    if (Array.isArray(value)) {
      headers.delete(name);
      for (const v of value) headers.append(name, headerValue(substitute(v, p)));
    } else {
      headers.set(name, headerValue(substitute(value, p)));
    }
  }
  const bytes = bodyBytes(c, p);
  if (bytes !== undefined && !named.includes("content-type")) headers.set("content-type", "application/json");
  const url = `${BASE}${substitute(c.path, p)}`;
  if (bytes !== undefined && (c.method === "GET" || c.method === "HEAD")) {
    // Carried as POST, shown to the Worker as GET, with the Content-Length a client sends.
    headers.set("content-length", String(bytes.length));
    const ctx = createExecutionContext();
    const res = await worker.fetch(withMethod(new Request(url, { method: "POST", headers, body: bytes }), c.method), env, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }
  // A Uint8Array body gets no automatic text/plain content type, unlike a string.
  const body = bytes === undefined ? undefined : c.chunked ? chunkedStream(bytes) : bytes;
  return exports.default.fetch(new Request(url, { method: c.method, headers, body }));
}

/** What one case got back, and whether that meets its expectation. */
export interface Outcome {
  c: AbuseCase;
  status: number;
  body: string;
  problem?: string;
}

function envelopeProblem(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return "body is not JSON";
  }
  const error = (parsed as { error?: Record<string, unknown> } | null)?.error;
  if (typeof error !== "object" || error === null) return "no error object";
  for (const field of ["code", "message", "request_id"]) {
    const value = error[field];
    if (typeof value !== "string" || value === "") return `error.${field} missing or empty`;
  }
  return undefined;
}

/** Checks a response against a case's expectation; undefined means it passed. */
export function judge(expect: Expectation, status: number, body: string): string | undefined {
  if (status >= 500) return `server error ${status}`;
  if (expect === "not-500") return undefined;
  if (expect === "4xx-json") {
    if (status < 400) return `status ${status}, wanted 4xx`;
  } else if (status !== Number(expect)) {
    return `status ${status}, wanted ${expect}`;
  }
  const envelope = envelopeProblem(body);
  return envelope === undefined ? undefined : `no error envelope: ${envelope}`;
}

/** Sends one case and judges the answer; a throw counts as a failure. */
export async function runCase(c: AbuseCase, p: Placeholders): Promise<Outcome> {
  try {
    const res = await deliver(c, p);
    const body = await res.text();
    const problem = judge(c.expect, res.status, body);
    return problem === undefined ? { c, status: res.status, body } : { c, status: res.status, body, problem };
  } catch (error) {
    return { c, status: 0, body: "", problem: `request failed in the test: ${String(error)}` };
  }
}

/** Runs `work` over `items` with at most `limit` in flight, keeping input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Escapes a string to printable ASCII: reports travel to vitest as UTF-8 and a lone surrogate breaks them. */
function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** One line per failure, enough to reproduce it. */
export function describeFailure(o: Outcome): string {
  const path = ascii(o.c.path.slice(0, 120));
  return `${o.c.id} ${o.c.method} ${path} expect=${o.c.expect} got=${o.status} (${ascii(o.problem ?? "")}) [${ascii(o.c.note.slice(0, 80))}] body=${ascii(o.body.slice(0, 200))}`;
}
