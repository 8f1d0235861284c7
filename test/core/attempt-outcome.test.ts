import { describe, expect, it } from "vitest";
import { type AttemptInput, classifyAttempt } from "../../src/execution/attempt-outcome";
import { PermanentError, RefusedTargetError, RetryableError } from "../../src/handlers/registry";

const NOW = Date.UTC(2026, 0, 1, 12);
const input = (overrides: Partial<AttemptInput> = {}): AttemptInput => ({
  attempt: 1,
  maxAttempts: 3,
  retry: { max_attempts: 3, backoff: 10, max_delay: 300 },
  now: NOW,
  random: () => 0,
  ...overrides,
});

describe("classifyAttempt: how an attempt ended decides the run's next step", () => {
  it("a result succeeds, and tells the host's guard the host is healthy", () => {
    expect(classifyAttempt({ ok: true, result: { n: 1 } }, input())).toEqual({
      outcome: { status: "succeeded", result: { n: 1 } },
      call: "healthy",
    });
  });

  it.each([
    ["a PermanentError fails at once; the host answered", new PermanentError("target answered 404"), "failed", "healthy"],
    [
      "a refused target fails at once; the host was never called",
      new RefusedTargetError("refused target: loopback"),
      "failed",
      "not_called",
    ],
    ["a RetryableError retries; it counts against the host", new RetryableError("target answered 503"), "retrying", "failure"],
    ["any other error retries; the host is not blamed", new TypeError("handler bug"), "retrying", "healthy"],
  ] as const)("%s", (_name, error, status, call) => {
    const verdict = classifyAttempt({ ok: false, error }, input());
    expect(verdict.outcome.status).toBe(status);
    expect(verdict.call).toBe(call);
  });

  it("the last attempt that fails is dead", () => {
    expect(classifyAttempt({ ok: false, error: new RetryableError("503") }, input({ attempt: 3 })).outcome.status).toBe("dead");
  });

  it.each([
    ["the backoff when there is no Retry-After", undefined, 5],
    ["a Retry-After longer than the backoff", 120, 120],
    ["a Retry-After shorter than the backoff: the backoff", 1, 5],
    ["a Retry-After beyond max_delay: max_delay", 86_400, 300],
  ] as const)("a retry waits %s", (_name, retryAfter, seconds) => {
    const verdict = classifyAttempt({ ok: false, error: new RetryableError("503", retryAfter) }, input());
    expect(verdict.outcome).toMatchObject({ status: "retrying", availableAt: NOW + seconds * 1000 });
  });

  it("the stored error says what happened, with the target's details and the attempt", () => {
    const verdict = classifyAttempt(
      { ok: false, error: new RetryableError("target answered 503", undefined, { status: 503, body: "busy" }) },
      input({ attempt: 2 }),
    );
    expect(verdict.outcome).toMatchObject({ error: { message: "target answered 503", status: 503, body: "busy", attempt: 2 } });
  });
});
