import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ZodError } from "zod";
import { log } from "./log";

/** Every error code the API can return, with its HTTP status. */
export const errorStatus = {
  bad_request: 400,
  malformed_json: 400,
  validation_failed: 400,
  unsupported_media_type: 415,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** The one exception type routes throw; `onError` turns it into the envelope. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  get status(): (typeof errorStatus)[ErrorCode] {
    return errorStatus[this.code];
  }
}

/** Field-level details of a zod failure, in a stable shape. */
export function zodDetails(error: ZodError): { path: string; message: string; code: string }[] {
  return error.issues.slice(0, 50).map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
    code: issue.code,
  }));
}

const SUMMARY_ISSUES = 3;
const SUMMARY_ISSUE_CHARS = 200;

/**
 * The first few problems of a zod failure in one line, bounded whatever the
 * input: "trigger.expression: invalid cron expression: …; target.url: Required (and 2 more)".
 */
export function zodSummary(error: ZodError): string {
  const shown = error.issues.slice(0, SUMMARY_ISSUES).map((issue) => {
    const path = issue.path.map(String).join(".");
    const line = path ? `${path}: ${issue.message}` : issue.message;
    return line.length > SUMMARY_ISSUE_CHARS ? `${line.slice(0, SUMMARY_ISSUE_CHARS - 1)}…` : line;
  });
  const more = error.issues.length - shown.length;
  return more > 0 ? `${shown.join("; ")} (and ${more} more)` : shown.join("; ");
}

function fromHttpException(error: HTTPException): ApiError {
  if (error.status === 413) return new ApiError("payload_too_large", "Request body exceeds the size limit");
  if (error.status === 400 && /JSON/i.test(error.message)) {
    return new ApiError("malformed_json", "Request body is not valid JSON");
  }
  if (error.status === 401) return new ApiError("unauthorized", error.message || "Unauthorized");
  const code = (Object.keys(errorStatus) as ErrorCode[]).find((c) => errorStatus[c] === error.status);
  return new ApiError(code ?? "bad_request", error.message || "Bad request");
}

/** What a client is told to wait after a transient storage failure: D1 and Durable Objects recover in seconds. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * How D1 and Durable Objects word failures that pass (their docs say "retry
 * the operation"): a lost connection, an object reset by a deploy or a storage
 * timeout, an overloaded database or object, a remote node's transient issue.
 */
const TRANSIENT_MESSAGES: RegExp[] = [
  /network connection lost/i,
  /reset because its code was updated/i,
  /storage caused object to be reset/i,
  /exceeded timeout which caused object to be reset/i,
  /storage operation (exceeded timeout|timed out)/i,
  /due to transient issue/i,
  /\boverloaded\b/i,
  /too much load/i,
  /^D1_ERROR: internal error/i,
];

/** The error and its causes (Drizzle wraps D1's error in its own), outermost first. */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/**
 * Whether a D1 or Durable Object failure will likely pass by itself (an outage,
 * not a bug): a Durable Object's error that says `retryable` or `overloaded`,
 * or a message D1 or Durable Objects use for such failures. SQL errors and
 * programming errors are not.
 */
/** An error's message, for a log line or a stored reason (anything thrown, not only Errors). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isTransientStorageError(error: unknown): boolean {
  return causeChain(error).some((e) => {
    if (typeof e === "string") return TRANSIENT_MESSAGES.some((pattern) => pattern.test(e));
    if (!(e instanceof Error)) return false;
    const flags = e as Error & { retryable?: unknown; overloaded?: unknown };
    return flags.retryable === true || flags.overloaded === true || TRANSIENT_MESSAGES.some((pattern) => pattern.test(e.message));
  });
}

/** The 503 a transient storage failure becomes: the work was not done, and may be asked for again shortly. */
export function storageUnavailable(): ApiError {
  return new ApiError(
    "unavailable",
    `Storage is briefly unavailable; retry in ${RETRY_AFTER_SECONDS} s`,
    { retry_after_seconds: RETRY_AFTER_SECONDS },
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );
}

/** Normalises anything thrown to an ApiError; unknown errors become a 500 without internals. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ZodError) return new ApiError("validation_failed", "Request validation failed", zodDetails(error));
  if (error instanceof HTTPException) return fromHttpException(error);
  if (isTransientStorageError(error)) return storageUnavailable();
  return new ApiError("internal_error", "Internal server error");
}

/** The first line of an error, for a log. */
function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Writes the error envelope `{"error":{code,message,details?,request_id}}`. */
export function errorResponse(c: Context, error: unknown): Response {
  const apiError = toApiError(error);
  const requestId = (c.get("requestId") as string | undefined) ?? "";
  if (apiError.code === "internal_error") log("error", "unhandled_error", { request_id: requestId, error: describe(error) });
  else if (apiError.code === "unavailable" && !(error instanceof ApiError)) {
    log("warn", "storage_unavailable", { request_id: requestId, error: describe(error) });
  }
  const body = {
    error: {
      code: apiError.code,
      message: apiError.message,
      ...(apiError.details === undefined ? {} : { details: apiError.details }),
      request_id: requestId,
    },
  };
  return c.json(body, apiError.status, apiError.headers);
}
