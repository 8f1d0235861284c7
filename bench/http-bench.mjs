// 1. HTTP: requests/s and p99 latency of four Taskflare routes, each against
// a bare Hono hello world served by the same wrangler dev. Other work shares
// the machine's 2 cores and its load swings within seconds, so each route
// is measured in three 5 s slices, each between two 5 s baseline slices
// (H T H T H T H ...), and compared with the baseline slices around it:
// a swing then hits both sides of the ratio alike.
import { join } from "node:path";
import { apiClient } from "./lib/api.mjs";
import { figure, ratioAtLeast } from "./lib/figures.mjs";
import { load, loadTool } from "./lib/load.mjs";
import { apiToken, benchPath, startTaskflare, startWorker } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";

/** A task that will not run during the measurement (and whose target is public). */
const TASK_BODY = { target: { type: "http", url: "https://example.com/" }, delay: 86400 };

/** Each route is measured in this many slices, each between two baseline slices. */
const SLICES = 3;

/** Combines slices: total requests over total time; p99 as the mean of the slices' p99. */
function merge(runs) {
  const seconds = runs.reduce((s, r) => s + r.requests / r.rps, 0);
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  return {
    rps: requests / seconds,
    p99: runs.reduce((s, r) => s + r.latencyMs.p99, 0) / runs.length,
    requests,
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    socketErrors: runs.reduce((s, r) => s + r.socketErrors, 0),
    slices_rps: runs.map((r) => round(r.rps, 1)),
  };
}

export async function runHttp({ quick, workDir }) {
  const slice = quick ? 2 : 5;
  const warmup = quick ? 1 : 2;
  const token = apiToken();
  const auth = { authorization: `Bearer ${token}` };
  const taskflare = await startTaskflare({ persistTo: join(workDir, "http-taskflare"), logFile: join(workDir, "http-taskflare.log") });
  const hono = await startWorker({
    name: "hono-hello",
    config: benchPath("baselines", "hono-hello", "wrangler.toml"),
    persistTo: join(workDir, "http-hono"),
    logFile: join(workDir, "http-hono.log"),
  });
  try {
    const call = apiClient(taskflare.url, token);
    // A far-future job, so GET /v1/jobs/:id reads a real row and computes next fire times.
    await call("PUT", "/v1/jobs/bench-http-job", {
      trigger: { type: "interval", hours: 1 },
      start_date: "2099-01-01T00:00:00Z",
      target: { type: "http", url: "https://example.com/" },
    });
    const cases = [
      { id: "healthz", label: "GET /healthz", url: `${taskflare.url}/healthz`, target: ratioAtLeast(0.9) },
      { id: "readyz", label: "GET /readyz", url: `${taskflare.url}/readyz` },
      {
        id: "post_task",
        label: "POST /v1/tasks",
        url: `${taskflare.url}/v1/tasks`,
        headers: auth,
        body: TASK_BODY,
        target: ratioAtLeast(0.3),
      },
      { id: "get_job", label: "GET /v1/jobs/:id", url: `${taskflare.url}/v1/jobs/bench-http-job`, headers: auth },
    ];
    const hello = { url: `${hono.url}/` };
    await load({ ...hello, seconds: warmup });
    let before = await load({ ...hello, seconds: slice });
    const baselineRuns = [before];
    const results = {};
    for (const c of cases) {
      await load({ ...c, seconds: warmup }); // JIT, connection pools, SQLite page cache
      const route = [];
      const around = [];
      for (let i = 0; i < SLICES; i++) {
        route.push(await load({ ...c, seconds: slice }));
        const after = await load({ ...hello, seconds: slice });
        around.push(before, after);
        baselineRuns.push(after);
        before = after;
      }
      results[c.id] = { route: merge(route), baseline: merge(around) };
    }
    const log = taskflare.log();
    const quotaHit = /QuotaExceededError|dispatch_failed/.test(log);
    const figures = [];
    for (const c of cases) {
      const { route: r, baseline } = results[c.id];
      const errors = r.non2xx + r.socketErrors;
      let note = errors > 0 ? `${r.non2xx} non-2xx and ${r.socketErrors} socket errors` : null;
      if (c.id === "post_task" && quotaHit)
        note = `${note ? `${note}; ` : ""}local queue refused some sends (QuotaExceededError): see ${taskflare.logFile}`;
      const valid = errors === 0 && !(c.id === "post_task" && quotaHit);
      figures.push(
        figure({
          id: `http.${c.id}.rps`,
          label: `${c.label} req/s`,
          unit: "req/s",
          value: r.rps,
          baseline: baseline.rps,
          baselineLabel: "Hono hello GET /",
          target: c.target ?? null,
          note,
          valid,
        }),
        figure({
          id: `http.${c.id}.p99`,
          label: `${c.label} p99`,
          unit: "ms",
          value: r.p99,
          baseline: baseline.p99,
          baselineLabel: "Hono hello GET /",
          note,
          valid,
        }),
      );
    }
    return {
      figures,
      details: {
        tool: loadTool,
        settings: { threads: 2, connections: 32, slices_per_route: SLICES, seconds_per_slice: slice, warmup_seconds: warmup },
        baseline_slices_rps: baselineRuns.map((r) => round(r.rps, 1)),
        taskflare: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { ...r.route, slices_rps: r.route.slices_rps }])),
      },
    };
  } finally {
    await taskflare.stop();
    await hono.stop();
  }
}
