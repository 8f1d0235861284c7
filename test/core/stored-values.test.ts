import { describe, expect, it } from "vitest";
import { retryPolicyOf } from "../../src/execution/target-schema";
import { hostOf } from "../../src/hosts/guard-client";
import { bounded, excerpt } from "../../src/runs/bounded";

describe("retryPolicyOf: a stored or given retry policy", () => {
  it.each([
    ["a whole policy", { max_attempts: 5, backoff: 1, max_delay: 60 }, { max_attempts: 5, backoff: 1, max_delay: 60 }],
    ["none (an old run)", null, { max_attempts: 3, backoff: 2, max_delay: 300 }],
    ["undefined", undefined, { max_attempts: 3, backoff: 2, max_delay: 300 }],
    ["a partial one: defaults filled", { max_attempts: 1 }, { max_attempts: 1, backoff: 2, max_delay: 300 }],
  ])("%s", (_, value, expected) => {
    expect(retryPolicyOf(value)).toEqual(expected);
  });

  it("refuses what the schema refuses, even with all three fields", () => {
    expect(() => retryPolicyOf({ max_attempts: 5, backoff: 1, max_delay: 60, extra: 1 })).toThrow();
    expect(() => retryPolicyOf({ max_attempts: "5", backoff: 1, max_delay: 60 })).toThrow();
  });
});

describe("excerpt and bounded: byte limits of UTF-8", () => {
  it.each([
    ["ascii that fits", "ok", 4, "ok"],
    ["ascii at the limit", "abcd", 4, "abcd"],
    ["ascii past the limit", "abcdef", 4, "abcd…[2 more]"],
    ["3-byte characters at the limit", "€€", 6, "€€"],
    ["3-byte characters past it", "€€€", 6, "€€…[1 more]"],
    ["a 4-byte character cut", "a😀", 3, "a\uFFFD…[1 more]"],
  ])("%s", (_, text, max, expected) => {
    expect(excerpt(text, max)).toBe(expected);
  });

  it("a value whose JSON fits is kept; one past the limit is a preview with its size", () => {
    expect(bounded({ a: "€".repeat(10) }, 40)).toEqual({ a: "€".repeat(10) });
    expect(bounded({ a: "€".repeat(20) }, 40)).toMatchObject({ truncated: true, bytes: 68 });
    expect(bounded(undefined)).toBeNull();
  });
});

describe("hostOf: the host a target calls", () => {
  it.each([
    [{ type: "http", method: "POST", url: "https://Example.COM:8443/x" }, "example.com:8443"],
    [{ type: "http", method: "POST", url: "https://example.com/x" }, "example.com"],
    [{ type: "http", method: "POST", url: "not a url" }, undefined],
    [{ type: "handler", name: "http", args: { url: "http://a.test/" } }, "a.test"],
    [{ type: "handler", name: "cleanup-runs", args: {} }, undefined],
  ])("%j → %s, the same when asked again", (target, host) => {
    expect(hostOf(target as never)).toBe(host);
    expect(hostOf(target as never)).toBe(host);
  });
});
