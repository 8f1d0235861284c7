// The cost table printed after `npm run bench` runs `cost`: each billable
// unit per run or task, its price, and QStash beside the total.
import { PRICES_PER_MILLION, QSTASH_PER_MILLION } from "./pricing.mjs";

const number = (v) => (v === 0 ? "0" : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 0.01 ? v.toFixed(3) : v.toPrecision(2));

/**
 * A Markdown table: one row per line of `lines` ([key, name, unit]), one
 * column per [label, summarized scenario] of `columns`; then $ per million
 * and QStash's price for the same work (none for the floors, which are not
 * schedulers).
 */
export function costTable(columns, lines) {
  const header = ["per run or task", "price", ...columns.map(([label]) => label)];
  const rows = lines.map(([key, name, unit]) => [
    `${name} (${unit})`,
    `$${PRICES_PER_MILLION[key]}/M`,
    ...columns.map(([, r]) => number(r.per_unit[key])),
  ]);
  rows.push(["**$ per million**", "", ...columns.map(([, r]) => `**${r.price_per_million.total.toFixed(2)}**`)]);
  rows.push([
    "QStash pay-as-you-go",
    "$10/M messages",
    ...columns.map(([label]) => (label.includes("floor") ? "—" : QSTASH_PER_MILLION.toFixed(2))),
  ]);
  rows.push(["runs succeeded / expected", "", ...columns.map(([, r]) => `${r.units}/${r.requested}`)]);
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
