/** The dashboard's stylesheet, served at /static/dashboard.css (a file, so the page's CSP can forbid inline styles). */
export const dashboardStylesheet = `:root { --bg: #0f172a; --panel: #111c33; --line: #22304f; --text: #e2e8f0; --muted: #94a3b8; --ok: #22c55e; --warn: #f59e0b; --bad: #ef4444; --accent: #38bdf8; --p95: #a78bfa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); padding: 20px 28px; }
header { display: flex; align-items: center; gap: 12px; margin-bottom: 16px; }
header h1 { font-size: 20px; margin: 0 12px 0 0; }
header nav { margin-left: auto; }
a { color: var(--accent); }
h2 { font-size: 16px; margin: 24px 0 8px; }
.muted { color: var(--muted); font-size: 12px; }
.pill { border-radius: 999px; padding: 2px 10px; font-size: 12px; border: 1px solid var(--line); }
.pill.ok { color: var(--ok); } .pill.warn { color: var(--warn); } .pill.bad { color: var(--bad); }
.flash { background: #0b3b2e; border: 1px solid var(--ok); padding: 8px 12px; border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(5, minmax(120px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin-top: 4px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 12px; margin-top: 16px; }
figure { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
figcaption { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin-bottom: 6px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .tick { fill: var(--muted); font-size: 10px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .line { fill: none; stroke-width: 2; }
svg .line.p50 { stroke: var(--accent); } svg .line.p95 { stroke: var(--p95); }
svg circle.p50 { fill: var(--accent); } svg circle.p95 { fill: var(--p95); }
svg rect.succeeded { fill: var(--ok); } svg rect.failed { fill: var(--warn); } svg rect.dead { fill: var(--bad); } svg rect.missed { fill: #64748b; }
svg.rates .label, svg.rates .value { fill: var(--text); font-size: 12px; }
svg.rates .track { fill: var(--line); } svg.rates .rate.ok { fill: var(--ok); } svg.rates .rate.warn { fill: var(--warn); } svg.rates .rate.bad { fill: var(--bad); }
.legend { display: flex; gap: 12px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; background: currentColor; }
.legend .p50 { color: var(--accent); } .legend .p95 { color: var(--p95); } .legend .succeeded { color: var(--ok); } .legend .failed { color: var(--warn); } .legend .dead { color: var(--bad); } .legend .missed { color: #64748b; }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
td.id { font-family: ui-monospace, monospace; font-size: 12px; }
td.error { font-family: ui-monospace, monospace; font-size: 12px; color: #fca5a5; max-width: 480px; overflow-wrap: anywhere; }
.state, .status { font-size: 12px; padding: 1px 8px; border-radius: 4px; background: var(--line); }
.state.active, .status.succeeded { color: var(--ok); } .state.paused, .status.failed, .status.retrying { color: var(--warn); } .status.dead, .state.finished { color: var(--bad); }
.dst-note { color: var(--warn); font-size: 12px; margin-top: 2px; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
td.actions { white-space: nowrap; }
td.actions form { display: inline; }
button { background: #1e293b; color: var(--text); border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; cursor: pointer; margin-right: 4px; }
button:hover { border-color: var(--accent); }
footer { margin-top: 20px; }
`;
