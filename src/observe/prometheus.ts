/** A tiny writer for the Prometheus text exposition format (version 0.0.4). */
export type Labels = Record<string, string>;

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

export class MetricsWriter {
  private lines: string[] = [];

  /** Declares a metric family; samples follow with `sample`. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels, value: number): this {
    this.lines.push(`${name}${labelText(labels)} ${number(value)}`);
    return this;
  }

  /** Writes one histogram series from per-bucket counts and their upper bounds (seconds). */
  histogram(name: string, labels: Labels, bounds: readonly number[], counts: readonly number[], sum: number): this {
    let cumulative = 0;
    bounds.forEach((le, i) => {
      cumulative += counts[i] ?? 0;
      this.sample(`${name}_bucket`, { ...labels, le: number(le) }, cumulative);
    });
    cumulative += counts[bounds.length] ?? 0;
    this.sample(`${name}_bucket`, { ...labels, le: "+Inf" }, cumulative);
    this.sample(`${name}_sum`, labels, sum);
    this.sample(`${name}_count`, labels, cumulative);
    return this;
  }

  toString(): string {
    return `${this.lines.join("\n")}\n`;
  }
}
