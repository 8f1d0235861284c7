// A figure is one benchmark number with its baseline, ratio, target and verdict.
import { round } from "./stats.mjs";

/**
 * Builds a figure. `target` is `{ of: "ratio" | "value", op: ">=" | "<=", value, source }`
 * or null when the brief set none (the figure is then informational).
 * `valid: false` (with `note`) marks a measurement that cannot be trusted; it fails.
 */
export function figure({ id, label, unit, value, baseline = null, baselineLabel = null, target = null, note = null, valid = true }) {
  const ratio = typeof value === "number" && typeof baseline === "number" && baseline !== 0 ? round(value / baseline, 3) : null;
  let pass = null;
  if (target) {
    const subject = target.of === "ratio" ? ratio : value;
    pass = valid && typeof subject === "number" ? (target.op === ">=" ? subject >= target.value : subject <= target.value) : false;
  }
  return {
    id,
    label,
    unit,
    value: round(value, 3),
    baseline: round(baseline, 3),
    baseline_label: baselineLabel,
    ratio,
    target,
    pass,
    valid,
    note,
  };
}

/** Target helpers, so call sites read like the brief. */
export const ratioAtLeast = (value, source = "brief") => ({ of: "ratio", op: ">=", value, source });
export const ratioAtMost = (value, source = "brief") => ({ of: "ratio", op: "<=", value, source });
export const valueAtMost = (value, source = "brief") => ({ of: "value", op: "<=", value, source });
