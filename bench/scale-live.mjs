// The scale scenario's live part: 10,000 jobs created through the API, each
// with its own JobObject, each firing once every five minutes at the receiver
// (33 fires a second), measured over five minutes of local workerd, in which
// every job fires once, metered (bench/metered). It reports D1 rows
// written per minute and per run, the heartbeat's D1 rows read per tick, how
// many runs a second were served against how many fell due, their lag, and
// every error: any 5xx, any run of the window that did not succeed, any
// failed invocation, any uncaught exception or error line in the wrangler log.
//
// Why every five minutes, not every minute: local workerd runs every object,
// the Worker, D1 and the queue broker on one thread, and a fire costs that
// thread about 10 ms of CPU (an object woken, its alarm, the call, its row;
// the bare alarm floor costs as much), so one thread serves some 60 to 100
// fires a second; 10,000 jobs a minute are 167. A backlog keeps objects open
// until workerd runs out of file descriptors (20,000 here, 3 per open
// object's SQLite). Production spreads objects over many machines; the
// README's capacity arithmetic uses its limits. `workerd_cpu_ms_per_run`
// reports the thread's cost per fire, measured over the window.
//
// The jobs are 5-minute interval jobs whose first fires are spread evenly over
// five minutes (one every 30 ms at 10,000), as jobs added over time would be,
// rather than one cron minute for all: a burst of 10,000 queue messages at
// once can throw QuotaExceededError locally (workers-sdk #15670), and
// production's cron jobs land on many machines, not one workerd thread.
// Their first fires fall due once every job should exist (at the creation
// rate measured so far), and the measured window starts a minute after the
// last first fire, so no job's first fire (a one-off) is in it.
//
// Every wait is bounded: when the local runtime cannot keep up, the scenario
// still ends, and what it saw (lag, runs missing, errors) is the result.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "./lib/api.mjs";
import { perClass, perUnit, readMeter, resetMeter, topStatements } from "./lib/meter-client.mjs";
import { pricePerMillion } from "./lib/pricing.mjs";
import { apiToken } from "./lib/servers.mjs";
import { round, summarize } from "./lib/stats.mjs";
import { mapLimit, sleep } from "./lib/wait.mjs";
import { scanLog } from "./lib/worker-log.mjs";
import { startMetered } from "./metered/start.mjs";

const MINUTE = 60_000;
/** How often each job fires (the quick run: every minute, 1,000 jobs). */
const periodOf = (quick) => (quick ? MINUTE : 5 * MINUTE);
/** Jobs created per second through the API, before any is measured (25 to 50 here, on 2 shared cores with 32 in flight). */
const FIRST_GUESS_PER_SECOND = 50;
const CREATE_CONCURRENCY = 32;
const FIRST_CHUNK = 100;
const CREATE_CHUNK = 500;
/** A drain that has seen no new answer for this long has stalled: the runtime gave up. */
const STALLED_MS = MINUTE;
/** How long the window's runs may take to finish, and the run list to be read, after the window. */
const DRAIN_MS = 3 * MINUTE;
const TALLY_MS = 3 * MINUTE;
const TICK_URL = `/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`;

const sleepUntil = (at) => sleep(Math.max(0, at - Date.now()));
/** CPU time (ms) the local runtime's processes have used so far, from /proc (Linux). */
function workerdCpuMs() {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("workerd")) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** The first half-minute mark at or after `t`: windows start between heartbeat ticks. */
const halfMinuteFrom = (t) => Math.ceil((t - MINUTE / 2) / MINUTE) * MINUTE + MINUTE / 2;

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

/** Every run created in [from - 1 min, to + 1 min), page by page, until `deadline`; `complete` says whether the list ended. */
async function listRuns(call, from, to, deadline) {
  const runs = [];
  const base = `/v1/runs?since=${new Date(from - MINUTE).toISOString()}&until=${new Date(to + MINUTE).toISOString()}&limit=200`;
  let cursor = null;
  do {
    if (Date.now() > deadline) return { runs, complete: false };
    const page = await call("GET", `${base}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    runs.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return { runs, complete: true };
}

/** Statuses and lag (first arrival at the receiver minus scheduled time) of the runs scheduled in [from, to). */
async function windowRuns(call, { from, to, expected, arrivals, deadline, jobIds }) {
  let source = "GET /v1/runs";
  let { runs, complete } = await listRuns(call, from, to, deadline);
  const inWindow = (r) => {
    const t = Date.parse(r.scheduled_for);
    return t >= from && t < to;
  };
  if (runs.filter(inWindow).length < expected && complete) {
    // A run list that does not hold every job's runs: ask each job (until the deadline).
    source = "GET /v1/jobs/:id/runs";
    const perJob = await mapLimit(jobIds, 16, async (id) =>
      Date.now() > deadline ? [] : (await call("GET", `/v1/jobs/${id}/runs?limit=10`)).items,
    );
    runs = perJob.flat();
    complete = Date.now() <= deadline;
  }
  const firstArrival = new Map();
  for (const a of arrivals) if (a.id && !firstArrival.has(a.id)) firstArrival.set(a.id, a.at);
  const statuses = {};
  const lags = [];
  for (const r of runs.filter(inWindow)) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const at = firstArrival.get(r.id);
    if (at !== undefined) lags.push(at - Date.parse(r.scheduled_for));
  }
  return { statuses, source, complete, lag_ms: summarize(lags) };
}

/** Waits until `end`, or until `answered()` has not moved for STALLED_MS; returns when it stalled, or null. */
async function watchWindow(answered, end) {
  let [last, lastChange] = [answered(), Date.now()];
  while (Date.now() < end) {
    await sleep(Math.min(5000, end - Date.now()));
    const n = answered();
    if (n !== last) [last, lastChange] = [n, Date.now()];
    else if (Date.now() - lastChange >= STALLED_MS) return Date.now();
  }
  return null;
}

/** D1 rows read by one list request, from the fetch entry's own counters (fires keep the totals moving). */
async function listRowsRead(server, query) {
  const before = (await readMeter(server)).d1.by_entry.fetch?.rows_read ?? 0;
  await fetch(`${server.url}/v1/jobs?${query}`, {
    headers: { authorization: `Bearer ${apiToken()}` },
    signal: AbortSignal.timeout(MINUTE),
  });
  return ((await readMeter(server)).d1.by_entry.fetch?.rows_read ?? 0) - before;
}

/**
 * Creates the jobs in chunks. A chunk's first fires fall due from the first half minute
 * after creation should end, at 0.7 times the rate measured so far (never earlier than the
 * chunk before: creation slows as the database grows). The first chunk is small and guesses
 * high, so it may start firing while the rest are created, but never sets the window late.
 * The jobs' minute offsets are one grid, whichever minute a chunk starts in.
 */
async function createJobs(call, jobIds, target, period) {
  const started = Date.now();
  const anchors = [];
  const errors = [];
  for (let from = 0; from < jobIds.length; ) {
    const size = from === 0 ? FIRST_CHUNK : CREATE_CHUNK;
    const rate = from === 0 ? FIRST_GUESS_PER_SECOND : (0.7 * from) / ((Date.now() - started) / 1000);
    const due = halfMinuteFrom(Date.now() + ((jobIds.length - from) / rate) * 1000 + 10_000);
    const anchor = Math.max(due, from > FIRST_CHUNK ? (anchors.at(-1) ?? 0) : 0);
    anchors.push(anchor);
    await mapLimit(jobIds.slice(from, from + size), CREATE_CONCURRENCY, async (id, j) => {
      const i = from + j;
      try {
        await call("PUT", `/v1/jobs/${id}`, {
          trigger: { type: "interval", seconds: period / 1000 },
          start_date: new Date(anchor + Math.floor((i * period) / jobIds.length)).toISOString(),
          target,
        });
      } catch (error) {
        errors.push(error.message.slice(0, 300));
      }
    });
    from += size;
  }
  const seconds = (Date.now() - started) / 1000;
  const lastAnchor = Math.max(...anchors);
  return {
    lastAnchor,
    createdAt: Date.now(),
    report: {
      seconds: round(seconds, 1),
      jobs_per_second: round(jobIds.length / seconds, 1),
      concurrency: CREATE_CONCURRENCY,
      first_fires_from: [...new Set(anchors)].map((a) => new Date(a).toISOString()),
      errors: errors.length,
      error_examples: errors.slice(0, 5),
    },
  };
}

async function measureLive({ quick, workDir, receiver, pages, logFile }) {
  const jobs = quick ? 1000 : 10_000;
  const period = periodOf(quick);
  // One period: every job fires once in the window.
  const minutes = period / MINUTE;
  const expected = jobs;
  const path = "/scale/live";
  const problems = [];
  const attempt = async (what, work) => {
    try {
      return await work();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : error}`.slice(0, 300));
      return null;
    }
  };
  const server = await startMetered(join(workDir, "scale-live"), logFile);
  const ticker = startTicker(server);
  const call = apiClient(server.url, apiToken());
  const jobIds = Array.from({ length: jobs }, (_, i) => `bench-live-${String(i).padStart(5, "0")}`);
  try {
    const creation = await createJobs(call, jobIds, { type: "http", method: "POST", url: `${receiver.url}${path}` }, period);
    // Every job fires once in the period before the window (a job created after its start_date
    // first fires on its next slot, so then the window moves on by a period).
    let windowStart = creation.lastAnchor + period;
    while (windowStart - period < creation.createdAt) windowStart += period;
    const windowEnd = windowStart + minutes * MINUTE;

    await sleepUntil(windowStart);
    const reset = await attempt("reset the meter", () => resetMeter(server));
    const cpuAtStart = workerdCpuMs();
    const answeredAtStart = receiver.answeredCount(path);
    // A Worker that cannot even reset its meter, or that serves no run for a minute, has fallen over.
    const stalledAt = reset === null ? Date.now() : await watchWindow(() => receiver.answeredCount(path), windowEnd);
    const answeredInWindow = receiver.answeredCount(path) - answeredAtStart;
    const cpuInWindow = workerdCpuMs() - cpuAtStart;
    const meter = await attempt("read the meter", () => readMeter(server));
    // No new runs after the window: alarms keep ticking but start nothing.
    await attempt("pause the scheduler", () => call("POST", "/v1/scheduler/pause"));
    // The window's runs finish: the receiver has them all and nothing new arrives for 3 s.
    const drainDeadline = stalledAt === null ? Date.now() + DRAIN_MS : 0;
    let [last, lastChange] = [-1, Date.now()];
    while (Date.now() < drainDeadline && Date.now() - lastChange < STALLED_MS) {
      const n = receiver.answeredCount(path);
      if (n !== last) [last, lastChange] = [n, Date.now()];
      if (n - answeredAtStart >= expected && Date.now() - lastChange >= 3000) break;
      await sleep(500);
    }
    const drained = await attempt("read the meter after the drain", () => readMeter(server));
    const runs = await attempt("list the window's runs", () =>
      windowRuns(call, {
        from: windowStart,
        to: windowEnd,
        expected,
        arrivals: receiver.arrivals(path),
        deadline: Date.now() + TALLY_MS,
        jobIds,
      }),
    );
    const listRows = {};
    for (const p of pages) listRows[p.id] = await attempt(`list ${p.query}`, () => listRowsRead(server, p.query));

    const valid = reset !== null && meter !== null && stalledAt === null;
    const ticksInWindow = ticker.ticks.filter((t) => t >= windowStart && t < windowEnd).length;
    const heartbeat = meter?.d1.by_entry.scheduled ?? { statements: 0, rows_read: 0, rows_written: 0 };
    const per = meter ? perUnit(meter, expected) : null;
    const statuses = runs?.statuses ?? {};
    const succeeded = statuses.succeeded ?? 0;
    return {
      valid,
      jobs,
      minutes,
      expected,
      succeeded,
      statuses,
      statuses_source: runs?.source ?? null,
      statuses_complete: runs?.complete ?? false,
      lag_ms: runs?.lag_ms ?? null,
      runs_per_second: { due: round(jobs / (period / 1000), 1), answered_in_window: round(answeredInWindow / (minutes * 60), 1) },
      workerd_cpu_ms_per_run: answeredInWindow ? round(cpuInWindow / answeredInWindow, 2) : null,
      workerd_cpu_share: round(cpuInWindow / (minutes * MINUTE), 2),
      stalled_at: stalledAt === null ? null : new Date(stalledAt).toISOString(),
      creation: creation.report,
      window: {
        start: new Date(windowStart).toISOString(),
        end: new Date(windowEnd).toISOString(),
        spread: `first fires ${round(period / jobs, 1)} ms apart over ${minutes} minute(s), then every ${period / 1000} s`,
      },
      d1_rows_written_per_minute: meter ? round(meter.d1.rows_written / minutes, 1) : null,
      d1_rows_written_per_run: per?.d1_rows_written ?? null,
      per_run: per,
      price_per_million_runs: per ? pricePerMillion(per) : null,
      per_class: meter ? perClass(meter, expected) : null,
      top_statements: meter ? topStatements(meter, expected, 8) : null,
      top_do_statements: meter ? topStatements(meter, expected, 8, "do") : null,
      heartbeat: {
        ticks: ticksInWindow,
        rows_read_per_tick: ticksInWindow ? round(heartbeat.rows_read / ticksInWindow, 1) : null,
        rows_written_per_tick: ticksInWindow ? round(heartbeat.rows_written / ticksInWindow, 1) : null,
        statements_per_tick: ticksInWindow ? round(heartbeat.statements / ticksInWindow, 1) : null,
      },
      list_rows_read: listRows,
      errors: {
        creation: creation.report.errors,
        responses_5xx: drained?.workers.responses_5xx ?? 0,
        uncaught_in_handlers: drained?.workers.uncaught_errors ?? 0,
        failed_durable_object_invocations: Object.values(drained?.durable_objects.by_class ?? {}).reduce((s, c) => s + c.failed, 0),
        runs_not_succeeded: expected - succeeded,
        benchmark_steps_failed: problems.length,
      },
      problems,
      meter,
    };
  } finally {
    ticker.stop();
    await server.stop();
  }
}

/** Runs the live scenario, then reads the server's log for errors; `pages` are the list queries whose D1 rows read are reported. */
export async function liveScale({ quick, workDir, receiver, pages }) {
  const logFile = join(workDir, "scale-live.log");
  const result = await measureLive({ quick, workDir, receiver, pages, logFile });
  const log = scanLog(readFileSync(logFile, "utf8"));
  return { ...result, log, errors: { ...result.errors, log_lines: log.total } };
}
