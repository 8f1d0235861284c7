// Reads a `wrangler dev` log for what counts as an error in a benchmark:
// responses with a 5xx status, uncaught exceptions, errors the Worker
// logged, and errors of the runtime itself (workerd's own "✘ [ERROR]" lines,
// e.g. SQLITE_CANTOPEN when it runs out of file descriptors).

// Checked in this order; a line counts once, as the first kind it matches.
const PATTERNS = {
  // wrangler's own request line, e.g. "[wrangler:info] GET /v1/jobs 500 Internal Server Error (12ms)".
  responses_5xx: /\[wrangler:\w+\] [A-Z]+ \S+ 5\d\d\b/,
  uncaught: /Uncaught|\[wrangler:error\]|QuotaExceededError/,
  // The Worker's JSON log lines at level error (src/log.ts).
  logged_errors: /"level":"error"/,
  runtime_errors: /^✘ \[ERROR\]/,
};

// wrangler colours its output even into a file.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** A line without its numbers and ids, so that repeats of one error group together. */
const shape = (line) =>
  line
    .replace(/"(time|request_id|job_id|run_id|message_id)":"[^"]*"/g, "")
    .replace(/reference = \w+/g, "reference = …")
    .replace(/\d+/g, "N")
    .slice(0, 160);

/** Counts each kind of error line in `text`, and the most frequent errors by shape. */
export function scanLog(text) {
  const counts = Object.fromEntries(Object.keys(PATTERNS).map((k) => [k, 0]));
  const shapes = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.replace(ANSI, "").trim();
    const kind = Object.keys(PATTERNS).find((k) => PATTERNS[k].test(line));
    if (!kind) continue;
    counts[kind]++;
    const key = shape(line);
    shapes.set(key, (shapes.get(key) ?? 0) + 1);
  }
  const top = [...shapes.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([line, count]) => ({ count, line }));
  return { ...counts, total: Object.values(counts).reduce((s, n) => s + n, 0), top };
}
