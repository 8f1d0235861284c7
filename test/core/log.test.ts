import { afterEach, describe, expect, it, vi } from "vitest";
import { log, logs, useLogLevel } from "../../src/log";

describe("LOG_LEVEL", () => {
  afterEach(() => {
    useLogLevel(undefined);
    vi.restoreAllMocks();
  });

  function written(level: string | undefined): string[] {
    useLogLevel(level);
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const)
      vi.spyOn(console, method).mockImplementation((line: string) => void lines.push(line));
    log("debug", "d");
    log("info", "i");
    log("warn", "w");
    log("error", "e");
    return lines.map((line) => (JSON.parse(line) as { event: string }).event);
  }

  it("writes info and above by default, and for a value it does not know", () => {
    expect(written(undefined)).toEqual(["i", "w", "e"]);
    expect(written("verbose")).toEqual(["i", "w", "e"]);
  });

  it("honours each level, in any case and with stray spaces", () => {
    expect(written("debug")).toEqual(["d", "i", "w", "e"]);
    expect(written(" WARN ")).toEqual(["w", "e"]);
    expect(written("error")).toEqual(["e"]);
  });

  it("logs() says which levels are written", () => {
    useLogLevel("warn");
    expect((["debug", "info", "warn", "error"] as const).map(logs)).toEqual([false, false, true, true]);
    useLogLevel("debug");
    expect(logs("debug")).toBe(true);
  });
});
