// The local HTTP endpoint that jobs and tasks call. It stamps each arrival
// with the wall clock the moment the request starts, and answers at once,
// so what it measures is the scheduler's delay, not the target's; with
// `?delay_ms=N` in the target's URL it answers N ms later instead, as a slow
// endpoint would.
import { createServer } from "node:http";

/** Starts the receiver on a free loopback port. Arrivals are grouped by path. */
export async function startReceiver() {
  const arrivals = new Map(); // path -> [{ id, scheduledFor, at }]
  const distinct = new Map(); // path -> Set of ids that arrived
  const answered = new Map(); // path -> Set of ids answered
  const group = (map, path) => {
    if (!map.has(path)) map.set(path, map === arrivals ? [] : new Set());
    return map.get(path);
  };
  const server = createServer((req, res) => {
    const at = Date.now();
    const url = new URL(req.url, "http://receiver");
    const path = url.pathname;
    const delayMs = Number(url.searchParams.get("delay_ms") ?? 0);
    const id = req.headers["webhook-id"] ?? null;
    const scheduledFor = req.headers["x-scheduled-for"] ? Number(req.headers["x-scheduled-for"]) : null;
    group(arrivals, path).push({ id, scheduledFor, at });
    if (id) group(distinct, path).add(id);
    req.resume(); // drain the body; only the headers matter
    req.on("end", () => {
      const answer = () => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok");
        if (id) group(answered, path).add(id);
      };
      if (delayMs > 0) setTimeout(answer, Math.max(0, at + delayMs - Date.now()));
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    /** Every arrival on `path`, in order. */
    arrivals: (path) => arrivals.get(path) ?? [],
    /** How many different webhook-ids reached `path` (redeliveries count once). */
    distinctCount: (path) => distinct.get(path)?.size ?? 0,
    /** How many different webhook-ids on `path` have been answered (a delayed answer counts once sent). */
    answeredCount: (path) => answered.get(path)?.size ?? 0,
    close: () => new Promise((r) => server.close(r)),
  };
}
