// Taskflare logs one JSON line per run state change ({"event":"run_state",
// "time", "run_id", "from", "to"}). Reading them back splits a fire's lag
// into stages, which says where the time goes without touching src/.

/** First time each run was created, claimed (started running) and finished, from a wrangler dev log. */
export function runTimeline(logText) {
  const runs = new Map();
  for (const line of logText.split("\n")) {
    const start = line.indexOf('{"time"');
    if (start === -1 || !line.includes('"event":"run_state"')) continue;
    let entry;
    try {
      entry = JSON.parse(line.slice(start, line.lastIndexOf("}") + 1));
    } catch {
      continue; // a line wrangler decorated or cut
    }
    const at = Date.parse(entry.time);
    const run = runs.get(entry.run_id) ?? {};
    if (entry.from === "none" && run.created === undefined) run.created = at;
    if (entry.to === "running" && run.claimed === undefined) run.claimed = at;
    if (["succeeded", "failed", "dead"].includes(entry.to) && run.finished === undefined) run.finished = at;
    runs.set(entry.run_id, run);
  }
  return runs;
}
