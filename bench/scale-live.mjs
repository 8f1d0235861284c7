// The scale scenario's live part: 10,000 jobs created through the API, each
// with its own JobObject, all firing once a minute at the receiver for three
// minutes of local workerd, metered (bench/metered). It reports D1 rows
// written per minute and per run, the heartbeat's D1 rows read per tick, and
// every error: any 5xx, any run of the window that did not succeed, any
// uncaught exception or error line in the wrangler log.
//
// The jobs are 60 s interval jobs whose first fires are spread evenly over
// one minute (one every 6 ms at 10,000), as jobs added over time would be,
// rather than one cron minute for all: a burst of 10,000 queue messages at
// once can throw QuotaExceededError locally (workers-sdk #15670), and
// production's cron jobs land on many machines, not one workerd thread.
// Their first fires are due once every job exists, and the measured window
// starts a minute later, so no job's first fire (a one-off cost) is in it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient, listAll } from "./lib/api.mjs";
import { perClass, perUnit, readMeter, resetMeter, topStatements } from "./lib/meter-client.mjs";
import { pricePerMillion } from "./lib/pricing.mjs";
import { apiToken } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";
import { mapLimit, sleep, waitFor } from "./lib/wait.mjs";
import { scanLog } from "./lib/worker-log.mjs";
import { startMetered } from "./metered/start.mjs";

const MINUTE = 60_000;
/** Jobs created per second through the API here (2 shared cores, 32 in flight): only sets when the first fires are due. */
const CREATE_PER_SECOND = 45;
const CREATE_CONCURRENCY = 32;
const TICK_URL = `/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`;

const sleepUntil = (at) => sleep(Math.max(0, at - Date.now()));

/** Drives the heartbeat on every minute boundary, as `npm run dev` does; remembers when each tick started. */
function startTicker(server) {
  const ticks = [];
  let timer;
  const tick = () => {
    ticks.push(Date.now());
    fetch(`${server.url}${TICK_URL}`).catch(() => {}); // a failed tick shows in the log and the meter
  };
  const next = () => {
    timer = setTimeout(
      () => {
        tick();
        next();
      },
      MINUTE - (Date.now() % MINUTE),
    );
  };
  tick();
  next();
  return { ticks, stop: () => clearTimeout(timer) };
}

/** Statuses of the runs scheduled in [from, to): from the run list, or job by job when it does not hold them all. */
async function windowStatuses(call, jobIds, from, to, expected) {
  const inWindow = (r) => {
    const t = Date.parse(r.scheduled_for);
    return t >= from && t < to;
  };
  const tally = (runs) => {
    const statuses = {};
    for (const r of runs.filter(inWindow)) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    return statuses;
  };
  const since = new Date(from - MINUTE).toISOString();
  const until = new Date(to + MINUTE).toISOString();
  let statuses = {};
  try {
    statuses = tally(await listAll(call, `/v1/runs?since=${since}&until=${until}`));
  } catch {
    // fall through to the jobs' own lists
  }
  const found = Object.values(statuses).reduce((s, n) => s + n, 0);
  if (found >= expected) return { statuses, source: "GET /v1/runs" };
  const perJob = await mapLimit(jobIds, 16, (id) => listAll(call, `/v1/jobs/${id}/runs`));
  return { statuses: tally(perJob.flat()), source: "GET /v1/jobs/:id/runs" };
}

/** D1 rows read by one list request, from the fetch entry's own counters (fires keep the totals moving). */
async function listRowsRead(server, query) {
  const before = (await readMeter(server)).d1.by_entry.fetch?.rows_read ?? 0;
  await fetch(`${server.url}/v1/jobs?${query}`, { headers: { authorization: `Bearer ${apiToken()}` } });
  return ((await readMeter(server)).d1.by_entry.fetch?.rows_read ?? 0) - before;
}

/** Runs the live scenario, then reads the server's log for errors; `pages` are the list queries whose D1 rows read are reported. */
export async function liveScale({ quick, workDir, receiver, pages }) {
  const logFile = join(workDir, "scale-live.log");
  const result = await measureLive({ quick, workDir, receiver, pages, logFile });
  const log = scanLog(readFileSync(logFile, "utf8"));
  return { ...result, log, errors: { ...result.errors, log_lines: log.total } };
}

async function measureLive({ quick, workDir, receiver, pages, logFile }) {
  const jobs = quick ? 1000 : 10_000;
  const minutes = quick ? 1 : 3;
  const path = "/scale/live";
  const server = await startMetered(join(workDir, "scale-live"), logFile);
  const ticker = startTicker(server);
  const call = apiClient(server.url, apiToken());
  const jobIds = Array.from({ length: jobs }, (_, i) => `bench-live-${String(i).padStart(5, "0")}`);
  try {
    // First fires from `anchor` on, one minute's worth; the window starts on a half minute, between ticks.
    const createStart = Date.now();
    const ready = createStart + (jobs / CREATE_PER_SECOND) * 1000 + 10_000;
    const anchor = Math.ceil((ready - MINUTE / 2) / MINUTE) * MINUTE + MINUTE / 2;
    const creationErrors = [];
    await mapLimit(jobIds, CREATE_CONCURRENCY, async (id, i) => {
      try {
        await call("PUT", `/v1/jobs/${id}`, {
          trigger: { type: "interval", seconds: 60 },
          start_date: new Date(anchor + Math.floor((i * MINUTE) / jobs)).toISOString(),
          target: { type: "http", method: "POST", url: `${receiver.url}${path}` },
        });
      } catch (error) {
        creationErrors.push(error.message.slice(0, 300));
      }
    });
    const createdAt = Date.now();
    // Every job's first fire falls in the minute before the window (a job created after its
    // start_date first fires on its next slot, so the window moves on by a minute).
    let windowStart = anchor + MINUTE;
    while (windowStart - MINUTE < createdAt) windowStart += MINUTE;
    const windowEnd = windowStart + minutes * MINUTE;

    await sleepUntil(windowStart);
    await resetMeter(server);
    const answeredAtStart = receiver.answeredCount(path);
    await sleepUntil(windowEnd);
    const meter = await readMeter(server);
    // No new runs after the window: alarms keep ticking but start nothing.
    await call("POST", "/v1/scheduler/pause");
    const expected = jobs * minutes;
    // The window's last runs finish: the receiver has them all and nothing new arrives for 3 s.
    let last = -1;
    let since = Date.now();
    await waitFor(
      () => {
        const n = receiver.answeredCount(path);
        if (n !== last) [last, since] = [n, Date.now()];
        return n - answeredAtStart >= expected && Date.now() - since >= 3000;
      },
      { timeoutMs: 5 * MINUTE, intervalMs: 500, what: "the window's runs to reach the receiver" },
    ).catch(() => null); // what is missing shows in the statuses below
    await sleep(2000);
    const drained = await readMeter(server);
    const { statuses, source } = await windowStatuses(call, jobIds, windowStart, windowEnd, expected);
    const listRows = {};
    for (const p of pages) listRows[p.id] = await listRowsRead(server, p.query);

    const ticksInWindow = ticker.ticks.filter((t) => t >= windowStart && t < windowEnd).length;
    const heartbeat = meter.d1.by_entry.scheduled ?? { statements: 0, rows_read: 0, rows_written: 0 };
    const per = perUnit(meter, expected);
    const failedInvocations = Object.values(drained.durable_objects.by_class).reduce((s, c) => s + c.failed, 0);
    return {
      jobs,
      minutes,
      expected,
      statuses,
      statuses_source: source,
      succeeded: statuses.succeeded ?? 0,
      creation: {
        seconds: round((createdAt - createStart) / 1000, 1),
        jobs_per_second: round(jobs / ((createdAt - createStart) / 1000), 1),
        concurrency: CREATE_CONCURRENCY,
        errors: creationErrors.length,
        error_examples: creationErrors.slice(0, 5),
      },
      window: {
        start: new Date(windowStart).toISOString(),
        end: new Date(windowEnd).toISOString(),
        first_fires_from: new Date(anchor).toISOString(),
        spread: `first fires ${round(MINUTE / jobs, 1)} ms apart over one minute, then every 60 s`,
      },
      d1_rows_written_per_minute: round(meter.d1.rows_written / minutes, 1),
      d1_rows_written_per_run: per.d1_rows_written,
      per_run: per,
      price_per_million_runs: pricePerMillion(per),
      per_class: perClass(meter, expected),
      top_statements: topStatements(meter, expected, 8),
      top_do_statements: topStatements(meter, expected, 8, "do"),
      heartbeat: {
        ticks: ticksInWindow,
        rows_read_per_tick: ticksInWindow ? round(heartbeat.rows_read / ticksInWindow, 1) : null,
        rows_written_per_tick: ticksInWindow ? round(heartbeat.rows_written / ticksInWindow, 1) : null,
        statements_per_tick: ticksInWindow ? round(heartbeat.statements / ticksInWindow, 1) : null,
      },
      list_rows_read: listRows,
      errors: {
        creation: creationErrors.length,
        responses_5xx: drained.workers.responses_5xx,
        uncaught_in_handlers: drained.workers.uncaught_errors,
        failed_durable_object_invocations: failedInvocations,
        runs_not_succeeded: expected - (statuses.succeeded ?? 0),
      },
      meter,
    };
  } finally {
    ticker.stop();
    await server.stop();
  }
}
