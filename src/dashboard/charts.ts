/**
 * Server-rendered SVG charts: no chart library and no script at view time,
 * so the dashboard needs no external network and adds nothing to the bundle.
 */
const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export interface Series {
  name: string;
  className: string;
  /** One value per x slot; null leaves a gap. */
  values: (number | null)[];
}

export interface ChartFrame {
  width: number;
  height: number;
  labels: string[];
  title: string;
  unit: string;
}

const PAD = { top: 16, right: 12, bottom: 24, left: 48 };

function scale(frame: ChartFrame, max: number) {
  const innerW = frame.width - PAD.left - PAD.right;
  const innerH = frame.height - PAD.top - PAD.bottom;
  const slots = Math.max(1, frame.labels.length);
  return {
    x: (i: number) => PAD.left + (innerW * (i + 0.5)) / slots,
    y: (v: number) => PAD.top + innerH - (max === 0 ? 0 : (innerH * v) / max),
    slotWidth: innerW / slots,
    baseline: PAD.top + innerH,
  };
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= value) ?? value;
}

function axes(frame: ChartFrame, max: number): string {
  const s = scale(frame, max);
  const ticks = [0, max / 2, max].map(
    (v) =>
      `<text class="tick" x="${PAD.left - 6}" y="${s.y(v) + 4}" text-anchor="end">${esc(formatTick(v))}</text><line class="grid" x1="${PAD.left}" x2="${frame.width - PAD.right}" y1="${s.y(v)}" y2="${s.y(v)}"/>`,
  );
  const every = Math.max(1, Math.ceil(frame.labels.length / 6));
  const xLabels = frame.labels
    .map((label, i) =>
      i % every === 0 ? `<text class="tick" x="${s.x(i)}" y="${frame.height - 6}" text-anchor="middle">${esc(label)}</text>` : "",
    )
    .join("");
  return ticks.join("") + xLabels;
}

function formatTick(v: number): string {
  return v >= 1000 ? `${Math.round(v / 100) / 10}k` : String(Math.round(v * 10) / 10);
}

function frameOpen(frame: ChartFrame): string {
  return `<svg class="chart" role="img" viewBox="0 0 ${frame.width} ${frame.height}" aria-label="${esc(frame.title)}"><title>${esc(frame.title)}</title>`;
}

/** A line chart, one path per series, with a point per value. */
export function lineChart(frame: ChartFrame, series: Series[]): string {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const s = scale(frame, max);
  const paths = series.map((serie) => {
    let d = "";
    let pen = false;
    serie.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${s.x(i).toFixed(1)},${s.y(v).toFixed(1)}`;
      pen = true;
    });
    const dots = serie.values
      .map((v, i) =>
        v === null
          ? ""
          : `<circle class="${serie.className}" cx="${s.x(i).toFixed(1)}" cy="${s.y(v).toFixed(1)}" r="2.5"><title>${esc(`${serie.name} ${frame.labels[i] ?? ""}: ${Math.round(v)} ${frame.unit}`)}</title></circle>`,
      )
      .join("");
    return `<path class="line ${serie.className}" d="${d}" data-series="${esc(serie.name)}"/>${dots}`;
  });
  return `${frameOpen(frame)}${axes(frame, max)}${paths.join("")}</svg>`;
}

/** Stacked bars, one stack per x slot, series bottom to top. */
export function stackedBars(frame: ChartFrame, series: Series[]): string {
  const totals = frame.labels.map((_, i) => series.reduce((n, serie) => n + (serie.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const s = scale(frame, max);
  const width = Math.max(1, s.slotWidth * 0.7);
  const bars = frame.labels.map((label, i) => {
    let top = 0;
    return series
      .map((serie) => {
        const v = serie.values[i] ?? 0;
        if (v <= 0) return "";
        const y1 = s.y(top + v);
        const h = s.y(top) - y1;
        top += v;
        return `<rect class="${serie.className}" x="${(s.x(i) - width / 2).toFixed(1)}" y="${y1.toFixed(1)}" width="${width.toFixed(1)}" height="${h.toFixed(1)}"><title>${esc(`${serie.name} ${label}: ${v}`)}</title></rect>`;
      })
      .join("");
  });
  return `${frameOpen(frame)}${axes(frame, max)}${bars.join("")}</svg>`;
}

/** Horizontal bars for values between 0 and 1 (success rates), labelled. */
export function rateBars(rows: { label: string; rate: number | null }[], width = 420): string {
  const rowHeight = 22;
  const height = Math.max(rowHeight, rows.length * rowHeight);
  const labelWidth = 150;
  const barSpace = width - labelWidth - 50;
  const items = rows.map((row, i) => {
    const y = i * rowHeight;
    const rate = row.rate ?? 0;
    const cls = row.rate === null ? "none" : rate >= 0.99 ? "ok" : rate >= 0.9 ? "warn" : "bad";
    const text = row.rate === null ? "n/a" : `${(rate * 100).toFixed(1)}%`;
    return `<text class="label" x="0" y="${y + 15}">${esc(row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label)}</text><rect class="track" x="${labelWidth}" y="${y + 4}" width="${barSpace}" height="14"/><rect class="rate ${cls}" x="${labelWidth}" y="${y + 4}" width="${(barSpace * rate).toFixed(1)}" height="14"/><text class="value" x="${labelWidth + barSpace + 6}" y="${y + 15}">${text}</text>`;
  });
  return `<svg class="chart rates" role="img" viewBox="0 0 ${width} ${height}" aria-label="Success rate per job"><title>Success rate per job</title>${items.join("")}</svg>`;
}
