import { describe, expect, it } from "vitest";
import { isTransientStorageError, toApiError } from "../../src/errors";

/** An error as a Durable Object stub throws it: the runtime sets these flags. */
function durableObjectError(message: string, flags: { retryable?: boolean; overloaded?: boolean; remote?: boolean }): Error {
  return Object.assign(new Error(message), flags);
}

/** As Drizzle reports a failed D1 query: its own error, D1's as the cause. */
function drizzleWrapped(cause: Error): Error {
  return new Error('Failed query: update "runs" set ...', { cause });
}

describe("isTransientStorageError: D1", () => {
  it.each([
    "D1_ERROR: Network connection lost.",
    "D1_ERROR: D1 DB reset because its code was updated.",
    "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
    "D1_ERROR: Internal error in D1 DB storage caused object to be reset.",
    "D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
    "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
    "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
    "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.",
    "D1_ERROR: internal error",
  ])("%s is transient: 503", (message) => {
    expect(isTransientStorageError(new Error(message))).toBe(true);
    expect(isTransientStorageError(drizzleWrapped(new Error(message)))).toBe(true);
    expect(toApiError(drizzleWrapped(new Error(message)))).toMatchObject({ code: "unavailable", status: 503 });
  });

  it.each([
    'D1_ERROR: near "SELEC": syntax error at offset 0: SQLITE_ERROR',
    "D1_ERROR: no such table: runz: SQLITE_ERROR",
    "D1_ERROR: UNIQUE constraint failed: runs.id: SQLITE_CONSTRAINT",
    "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'",
    "D1_ERROR: Exceeded maximum DB size",
  ])("%s is a bug or a limit, not an outage: 500", (message) => {
    expect(isTransientStorageError(drizzleWrapped(new Error(message)))).toBe(false);
    expect(toApiError(drizzleWrapped(new Error(message)))).toMatchObject({ code: "internal_error", status: 500 });
  });
});

describe("isTransientStorageError: Durable Objects", () => {
  it.each([
    ["an error the runtime marks retryable", durableObjectError("some internal failure", { retryable: true })],
    ["an error the runtime marks overloaded", durableObjectError("busy", { overloaded: true })],
    ["a reset by a deploy", new Error("Durable Object reset because its code was updated.")],
    ["a lost connection", new Error("Network connection lost.")],
    ["an overloaded object", new Error("Durable Object is overloaded. Too many requests queued.")],
    ["a storage timeout", new Error("Durable Object storage operation exceeded timeout which caused object to be reset.")],
    [
      "an account over its load",
      new Error("Your account is generating too much load on Durable Objects. Please back off and try again later."),
    ],
  ])("%s is transient: 503", (_what, error) => {
    expect(isTransientStorageError(error)).toBe(true);
    expect(toApiError(error)).toMatchObject({ code: "unavailable", status: 503, headers: { "Retry-After": "5" } });
  });

  it("an error thrown by the object's own code (remote, not retryable) is not", () => {
    expect(isTransientStorageError(durableObjectError("job state is corrupt", { remote: true, retryable: false }))).toBe(false);
  });
});

describe("isTransientStorageError: everything else", () => {
  it.each([
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'id')")],
    ["a plain Error", new Error("run insert conflicted but no run holds its key")],
    ["a thrown string", "boom"],
    ["undefined", undefined],
    ["null", null],
  ])("%s is a bug: 500 without internals", (_what, error) => {
    expect(isTransientStorageError(error)).toBe(false);
    const apiError = toApiError(error);
    expect(apiError).toMatchObject({ code: "internal_error", message: "Internal server error" });
    expect(apiError.headers).toBeUndefined();
  });

  it("a cycle of causes ends", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isTransientStorageError(a)).toBe(false);
  });
});
