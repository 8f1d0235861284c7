import { describe, expect, it } from "vitest";
import { lineChart, rateBars, stackedBars } from "../../src/dashboard/charts";

const frame = { width: 300, height: 100, labels: ["a", "b", "c"], title: "t <x>", unit: "ms" };

describe("server-rendered charts", () => {
  it("draws a line per series through each present value, leaving gaps for nulls", () => {
    const svg = lineChart(frame, [{ name: "p50", className: "p50", values: [10, null, 30] }]);
    const d = svg.match(/<path class="line p50" d="([^"]*)"/)?.[1] ?? "";
    expect(d.match(/M/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(2);
    expect(svg).toContain("t &lt;x&gt;");
  });

  it("stacks bars whose heights are proportional to the values", () => {
    const svg = stackedBars(frame, [
      { name: "ok", className: "succeeded", values: [1, 2, 0] },
      { name: "bad", className: "failed", values: [1, 0, 0] },
    ]);
    const heights = [...svg.matchAll(/<rect class="(\w+)"[^>]*height="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])] as const);
    expect(heights).toHaveLength(3);
    const [first, second, third] = heights;
    expect(first?.[1]).toBeCloseTo(second?.[1] ?? 0, 5); // 1 and 1 in the first stack
    expect(third?.[1]).toBeCloseTo((first?.[1] ?? 0) * 2, 5); // 2 in the second
  });

  it("labels success rates as percentages and escapes job names", () => {
    const svg = rateBars([
      { label: "<job>", rate: 0.5 },
      { label: "none", rate: null },
    ]);
    expect(svg).toContain("50.0%");
    expect(svg).toContain("n/a");
    expect(svg).toContain("&lt;job&gt;");
  });
});
