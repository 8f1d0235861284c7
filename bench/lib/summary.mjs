// The human-readable table printed at the end of `npm run bench`.

const fmt = (v) =>
  v === null || v === undefined
    ? "—"
    : typeof v === "number"
      ? Math.abs(v) >= 100
        ? v.toFixed(0)
        : Math.abs(v) >= 10
          ? v.toFixed(1)
          : v.toFixed(2)
      : String(v);

function targetText(t) {
  if (!t) return "—";
  return `${t.of === "ratio" ? "ratio " : ""}${t.op} ${t.value}${t.source === "brief" ? "" : " *"}`;
}

function verdict(f) {
  if (!f.valid) return "INVALID";
  if (f.pass === null) return "info";
  return f.pass ? "PASS" : "FAIL";
}

/** Renders figures as an aligned text table, grouped by benchmark. */
export function renderSummary(sections) {
  const header = ["figure", "Taskflare", "baseline", "ratio", "target", "result"];
  const rows = [];
  for (const [name, section] of Object.entries(sections)) {
    if (section.error) {
      rows.push([`[${name}] FAILED: ${section.error.split("\n")[0].slice(0, 100)}`, "", "", "", "", ""]);
      continue;
    }
    rows.push([`[${name}]`, "", "", "", "", ""]);
    for (const f of section.figures) {
      rows.push([
        `  ${f.label}`,
        `${fmt(f.value)} ${f.unit}`,
        f.baseline === null ? "—" : `${fmt(f.baseline)} (${f.baseline_label})`,
        fmt(f.ratio),
        targetText(f.target),
        verdict(f),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
    "",
    "* target derived from the design, not given in the brief; — = none (informational)",
  ].join("\n");
}
