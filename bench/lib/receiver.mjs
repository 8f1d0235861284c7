// The local HTTP endpoint that jobs and tasks call. It stamps each arrival
// with the wall clock the moment the request starts, and answers at once,
// so what it measures is the scheduler's delay, not the target's.
import { createServer } from "node:http";

/** Starts the receiver on a free loopback port. Arrivals are grouped by path. */
export async function startReceiver() {
  const arrivals = new Map(); // path -> [{ id, scheduledFor, at }]
  const distinct = new Map(); // path -> Set of ids
  const server = createServer((req, res) => {
    const at = Date.now();
    const path = req.url.split("?")[0];
    const id = req.headers["webhook-id"] ?? null;
    const scheduledFor = req.headers["x-scheduled-for"] ? Number(req.headers["x-scheduled-for"]) : null;
    if (!arrivals.has(path)) {
      arrivals.set(path, []);
      distinct.set(path, new Set());
    }
    arrivals.get(path).push({ id, scheduledFor, at });
    if (id) distinct.get(path).add(id);
    req.resume(); // drain the body; only the headers matter
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
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
    close: () => new Promise((r) => server.close(r)),
  };
}
