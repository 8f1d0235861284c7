// Reads a `wrangler dev` log for what counts as an error in a benchmark:
// responses with a 5xx status, uncaught exceptions, errors the Worker logged.

const PATTERNS = {
  // wrangler's own request line, e.g. "[wrangler:info] GET /v1/jobs 500 Internal Server Error (12ms)".
  responses_5xx: /\[wrangler:\w+\] [A-Z]+ \S+ 5\d\d\b/,
  uncaught: /Uncaught|\[wrangler:error\]|✘ \[ERROR\]|QuotaExceededError/,
  // The Worker's JSON log lines at level error (src/log.ts).
  logged_errors: /"level":"error"/,
};

/** Counts each kind of error line in `text`, with the first few lines of each as examples. */
export function scanLog(text) {
  const counts = Object.fromEntries(Object.keys(PATTERNS).map((k) => [k, 0]));
  const examples = [];
  for (const line of text.split("\n")) {
    for (const [kind, pattern] of Object.entries(PATTERNS)) {
      if (!pattern.test(line)) continue;
      counts[kind]++;
      if (examples.length < 10) examples.push(line.slice(0, 300));
      break;
    }
  }
  return { ...counts, total: Object.values(counts).reduce((s, n) => s + n, 0), examples };
}
