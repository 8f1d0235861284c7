import { describe, expect, it } from "vitest";
import { isRetryableStatus, parseRetryAfter, retryDelaySeconds } from "../../src/execution/backoff";

const policy = { backoff: 2, max_delay: 300 };
const always = (value: number) => () => value;
// Just below 1: the top of equal jitter's range.
const almostOne = always(1 - Number.EPSILON);

describe("retryDelaySeconds", () => {
  it.each([
    [1, 2],
    [2, 4],
    [3, 8],
    [4, 16],
    [5, 32],
    [8, 256],
    [9, 300],
    [20, 300],
    [1000, 300],
    [1100, 300],
  ])("retry %i waits up to %i seconds: doubling from the base, capped at max_delay", (attempt, ceiling) => {
    expect(retryDelaySeconds(attempt, policy, almostOne)).toBe(ceiling);
  });

  it.each([
    [1, 1],
    [2, 2],
    [3, 4],
    [9, 150],
    [1000, 150],
  ])("retry %i waits at least %i seconds: equal jitter keeps the lower half", (attempt, floor) => {
    expect(retryDelaySeconds(attempt, policy, always(0))).toBe(floor);
  });

  it("a mid-range random value lands in the middle of the upper half", () => {
    expect(retryDelaySeconds(5, policy, always(0.5))).toBe(24);
  });

  it("every delay stays within [ceiling/2, ceiling] for many random values", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(2 * 2 ** (attempt - 1), 300);
      for (let i = 0; i < 50; i++) {
        const delay = retryDelaySeconds(attempt, policy, Math.random);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it("a fractional base is rounded up to a whole second, never 0", () => {
    expect(retryDelaySeconds(1, { backoff: 0.1, max_delay: 300 }, always(0))).toBe(1);
  });

  it("a zero base means retry at once", () => {
    expect(retryDelaySeconds(1, { backoff: 0, max_delay: 300 }, almostOne)).toBe(0);
    expect(retryDelaySeconds(1100, { backoff: 0, max_delay: 300 }, almostOne)).toBe(0);
  });

  it("a zero max_delay means retry at once", () => {
    expect(retryDelaySeconds(3, { backoff: 2, max_delay: 0 }, almostOne)).toBe(0);
  });

  it("a random source outside [0, 1) cannot push a delay past the cap", () => {
    expect(retryDelaySeconds(20, policy, always(7))).toBe(300);
    expect(retryDelaySeconds(20, policy, always(-3))).toBe(150);
  });

  it.each([0, -1, 1.5, Number.NaN])("attempt %s is refused", (attempt) => {
    expect(() => retryDelaySeconds(attempt, policy, almostOne)).toThrow(RangeError);
  });

  it.each([
    { backoff: -1, max_delay: 300 },
    { backoff: 2, max_delay: -1 },
    { backoff: Number.NaN, max_delay: 300 },
    { backoff: 2, max_delay: Number.POSITIVE_INFINITY },
  ])("policy %o is refused", (bad) => {
    expect(() => retryDelaySeconds(1, bad, almostOne)).toThrow(RangeError);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2025, 10, 6, 8, 49, 37); // Thu, 06 Nov 2025 08:49:37 GMT

  it.each([
    ["120", 120],
    ["0", 0],
    [" 30 ", 30],
    ["007", 7],
  ])("delta-seconds %j means %i seconds", (header, seconds) => {
    expect(parseRetryAfter(header, now)).toBe(seconds);
  });

  it.each([
    ["an IMF-fixdate", "Thu, 06 Nov 2025 08:51:37 GMT", 120],
    ["an obsolete RFC 850 date", "Thursday, 06-Nov-25 08:51:37 GMT", 120],
    ["an obsolete asctime date", "Thu Nov  6 08:51:37 2025", 120],
    ["a date a day ahead", "Fri, 07 Nov 2025 08:49:37 GMT", 86_400],
    ["a date in the past", "Wed, 05 Nov 2025 08:49:37 GMT", 0],
    ["a date equal to now", "Thu, 06 Nov 2025 08:49:37 GMT", 0],
  ])("%s %j means %i seconds", (_form, header, seconds) => {
    expect(parseRetryAfter(header, now)).toBe(seconds);
  });

  it("a date a fraction of a second ahead rounds up to a whole second", () => {
    expect(parseRetryAfter("Thu, 06 Nov 2025 08:49:38 GMT", now + 400)).toBe(1);
  });

  it("an RFC 850 year more than 50 years ahead belongs to the previous century", () => {
    expect(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now)).toBe(0);
  });

  it.each([
    ["absent", null],
    ["empty", ""],
    ["negative", "-5"],
    ["fractional", "1.5"],
    ["words", "soon"],
    ["a date without GMT", "Thu, 06 Nov 2025 08:51:37"],
    ["a date in another zone", "Thu, 06 Nov 2025 08:51:37 +0100"],
    ["an ISO date", "2025-11-06T08:51:37Z"],
    ["an impossible day", "Sat, 31 Feb 2026 08:00:00 GMT"],
    ["an impossible hour", "Thu, 06 Nov 2025 24:00:00 GMT"],
    ["an unknown month", "Thu, 06 Foo 2025 08:51:37 GMT"],
  ])("%s (%j) gives undefined", (_what, header) => {
    expect(parseRetryAfter(header, now)).toBeUndefined();
  });
});

describe("isRetryableStatus", () => {
  it.each([408, 429, 500, 502, 503, 504, 599])("%i is retried", (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 422, 499])("%i fails at once", (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });

  it.each([200, 201, 204, 301, 302, 304])("%i is not a failure, so not retried", (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });

  it.each([0, 600, 503.5])("%s is not an HTTP status to retry", (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});
