// 6. Scale: (a) 10,000 jobs created through the API, each with its own
// JobObject, firing every five minutes, over five minutes (scale-live.mjs): D1 rows
// written per minute and per run, the heartbeat's D1 rows read per tick
// against the same tick on an empty database, and every error; (b) the
// latency of GET /v1/jobs pages over 10,000 jobs, against a bare Worker
// running the same keyset SELECT over the same SQLite file.
//
// For (b) the jobs are inserted straight into the local D1 (wrangler d1
// execute) before any server starts: active interval jobs whose first fire
// is in 2099, with next_run_at set as the JobObject would record it. They
// have no JobObject (no alarm armed), which changes nothing the list reads,
// and nothing fires while latency is measured.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { figure, ratioAtLeast, ratioAtMost, valueAtMost } from "./lib/figures.mjs";
import { load } from "./lib/load.mjs";
import { perUnit, resetMeter, waitQuiet } from "./lib/meter-client.mjs";
import { QSTASH_PER_MILLION } from "./lib/pricing.mjs";
import { apiToken, applyMigrations, benchPath, bin, runSync, startTaskflare, startWorker } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";
import { startMetered } from "./metered/start.mjs";
import { liveScale } from "./scale-live.mjs";

const FAR_FUTURE = Date.parse("2099-01-01T00:00:00Z");
const ROWS_PER_INSERT = 250;

const sqlString = (value) => `'${String(value).replace(/'/g, "''")}'`;

/** One INSERT per 250 jobs, shaped like rows the jobs API writes. */
function seedSql(count, now) {
  const trigger = sqlString(JSON.stringify({ type: "interval", days: 1 }));
  const target = sqlString(JSON.stringify({ type: "http", method: "POST", url: "https://example.com/" }));
  const statements = [];
  for (let from = 0; from < count; from += ROWS_PER_INSERT) {
    const rows = [];
    for (let i = from; i < Math.min(count, from + ROWS_PER_INSERT); i++) {
      const id = `bench-scale-${String(i).padStart(5, "0")}`;
      rows.push(
        `(${sqlString(id)}, ${sqlString(id)}, ${trigger}, ${target}, 'UTC', ${FAR_FUTURE}, NULL, 0, 1, 1, 60, NULL, NULL, 'default', 'active', 1, NULL, NULL, ${FAR_FUTURE}, ${now}, ${now})`,
      );
    }
    statements.push(
      `INSERT INTO jobs (id, name, "trigger", target, timezone, start_date, end_date, jitter, max_instances, "coalesce", misfire_grace_time, retry, timeout, priority, state, version, tags, metadata, next_run_at, created_at, updated_at) VALUES\n${rows.join(",\n")};`,
    );
  }
  return statements.join("\n");
}

/** The heartbeat's own D1 statements per tick on a server with nothing else to do. */
async function heartbeatRowsPerTick(server, ticks) {
  await resetMeter(server);
  for (let i = 0; i < ticks; i++) await fetch(`${server.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`);
  const meter = await waitQuiet(server, 1000);
  const own = meter.d1.by_entry.scheduled ?? { rows_read: 0, rows_written: 0 };
  return {
    rows_read_per_tick: round(own.rows_read / ticks, 1),
    rows_written_per_tick: round(own.rows_written / ticks, 1),
    per_tick: perUnit(meter, ticks),
  };
}

/** The same pages on every server: first page at 50 and 200, and a page from the middle of `prefix`'s ids. */
const listPages = (jobs, prefix) => [
  { id: "limit50", label: "GET /v1/jobs?limit=50", query: "limit=50" },
  { id: "limit200", label: "GET /v1/jobs?limit=200", query: "limit=200" },
  {
    id: "limit50_mid",
    label: "GET /v1/jobs?limit=50 (mid cursor)",
    query: `limit=50&cursor=${prefix}${String(Math.floor(jobs / 2)).padStart(5, "0")}`,
  },
];

/** GET /v1/jobs latency over the seeded database, against a bare Worker's SELECT over the same file. */
async function listLatency({ quick, workDir }) {
  const jobs = quick ? 1000 : 10_000;
  const seconds = quick ? 2 : 5;
  const dir = join(workDir, "scale");
  const seedFile = join(workDir, "scale-seed.sql");
  const seedStarted = Date.now();
  applyMigrations(dir);
  writeFileSync(seedFile, seedSql(jobs, Date.now()));
  runSync(bin("wrangler"), ["d1", "execute", "DB", "--local", "--persist-to", dir, "--file", seedFile]);
  const seedSeconds = round((Date.now() - seedStarted) / 1000, 1);
  const pages = listPages(jobs, "bench-scale-");
  const measure = async (url, headers = {}) => {
    await load({ url, seconds: 1, connections: 1, threads: 1, headers });
    return load({ url, seconds, connections: 1, threads: 1, headers });
  };

  const floor = await startWorker({
    name: "d1-list",
    config: benchPath("baselines", "d1-list", "wrangler.toml"),
    persistTo: dir,
    logFile: join(workDir, "scale-d1-list.log"),
  });
  const floorLatency = {};
  let seeded;
  try {
    seeded = (await (await fetch(`${floor.url}/count`)).json()).jobs;
    for (const p of pages) floorLatency[p.id] = await measure(`${floor.url}/jobs?${p.query}`);
  } finally {
    await floor.stop();
  }
  const taskflare = await startTaskflare({ persistTo: dir, logFile: join(workDir, "scale-taskflare.log") });
  const latency = {};
  try {
    for (const p of pages) latency[p.id] = await measure(`${taskflare.url}/v1/jobs?${p.query}`, { authorization: `Bearer ${apiToken()}` });
  } finally {
    await taskflare.stop();
  }
  return { jobs, seeded, seconds, seedSeconds, pages, latency, floorLatency };
}

export async function runScale({ quick, workDir, receiver }) {
  const list = await listLatency({ quick, workDir });
  const liveJobs = quick ? 1000 : 10_000;
  const live = await liveScale({ quick, workDir, receiver, pages: listPages(liveJobs, "bench-live-") });
  const empty = await startMetered(join(workDir, "scale-empty"), join(workDir, "scale-empty-metered.log"));
  let emptyHeartbeat;
  try {
    emptyHeartbeat = await heartbeatRowsPerTick(empty, 3);
  } finally {
    await empty.stop();
  }

  const jobsLabel = `${live.jobs.toLocaleString("en")} jobs`;
  const complete = live.succeeded === live.expected;
  const errorCount = Object.values(live.errors).reduce((s, n) => s + n, 0);
  const runsNote = `${live.succeeded.toLocaleString("en")}/${live.expected.toLocaleString("en")} runs succeeded`;
  const figures = [
    figure({
      id: "scale.live.d1_rows_written_per_minute",
      label: `D1 rows written / minute, ${jobsLabel} firing every ${live.minutes} min`,
      unit: "rows",
      value: live.d1_rows_written_per_minute,
      valid: live.valid && complete,
      note: `${live.minutes} min window; ${runsNote}`,
    }),
    figure({
      id: "scale.live.d1_rows_written_per_run",
      label: `D1 rows written / run, ${jobsLabel}`,
      unit: "rows",
      value: live.d1_rows_written_per_run,
      valid: live.valid && complete,
      note: runsNote,
    }),
    figure({
      id: "scale.live.usd_per_million",
      label: `$ per million runs, ${jobsLabel} (every billable line)`,
      unit: "USD",
      value: live.price_per_million_runs?.total ?? null,
      baseline: QSTASH_PER_MILLION,
      baselineLabel: "QStash pay-as-you-go",
      valid: live.valid && complete,
      note: runsNote,
    }),
    figure({
      id: "scale.live.runs_succeeded",
      label: `runs succeeded of fires due, ${jobsLabel} x ${live.minutes} min`,
      unit: "runs",
      value: live.succeeded,
      baseline: live.expected,
      baselineLabel: "fires due",
      target: ratioAtLeast(1),
      note: JSON.stringify(live.statuses),
    }),
    figure({
      id: "scale.live.runs_per_second",
      label: `runs served / s in the window, ${jobsLabel}`,
      unit: "runs/s",
      value: live.runs_per_second.answered_in_window,
      baseline: live.runs_per_second.due,
      baselineLabel: "fires due / s",
      note: live.lag_ms?.count ? `lag p50 ${live.lag_ms.p50} ms, p99 ${live.lag_ms.p99} ms` : null,
    }),
    figure({
      id: "scale.live.workerd_cpu_ms_per_run",
      label: `local workerd CPU / run, ${jobsLabel}`,
      unit: "ms",
      value: live.workerd_cpu_ms_per_run,
      note: `workerd busy ${Math.round((live.workerd_cpu_share ?? 0) * 100)}% of the window (one thread)`,
    }),
    figure({
      id: "scale.live.errors",
      label: "errors (5xx, runs not succeeded, failed invocations, error log lines)",
      unit: "errors",
      value: errorCount,
      target: valueAtMost(0),
      note: errorCount ? JSON.stringify(live.errors) : null,
    }),
    figure({
      id: "scale.heartbeat.d1_rows_read",
      label: `heartbeat D1 rows read / tick, ${jobsLabel} firing`,
      unit: "rows",
      value: live.heartbeat.rows_read_per_tick,
      baseline: emptyHeartbeat.rows_read_per_tick,
      baselineLabel: "same tick, 0 jobs",
      // The brief sets no number; the design says a tick's cost grows with late work, not with all jobs.
      target: ratioAtMost(2, "derived: heartbeat cost must not grow with job count (src/heartbeat/tick.ts)"),
      valid: live.valid && live.heartbeat.ticks > 0,
      note: `${live.heartbeat.ticks} ticks in the window`,
    }),
  ];
  for (const p of list.pages) {
    const errors = list.latency[p.id].non2xx + list.latency[p.id].socketErrors;
    for (const q of ["p50", "p99"]) {
      figures.push(
        figure({
          id: `scale.${p.id}.${q}`,
          label: `${p.label} ${q}`,
          unit: "ms",
          value: list.latency[p.id].latencyMs[q],
          baseline: list.floorLatency[p.id].latencyMs[q],
          baselineLabel: "bare D1 SELECT Worker",
          valid: errors === 0 && list.seeded === list.jobs,
          note: errors ? `${errors} errors` : `${live.list_rows_read[p.id]} D1 rows read per request (live ${jobsLabel})`,
        }),
      );
    }
  }
  return {
    figures,
    details: {
      live,
      empty_heartbeat: emptyHeartbeat,
      list_latency: {
        jobs: list.jobs,
        seeded: list.seeded,
        seed: {
          method: "INSERT ... VALUES via wrangler d1 execute --local --file, before any server starts",
          state: "active",
          first_fire: "2099-01-01T00:00:00Z",
          job_objects: "none (no alarms armed)",
          seconds: list.seedSeconds,
        },
        settings: { connections: 1, seconds: list.seconds },
        latency_ms: Object.fromEntries(
          list.pages.map((p) => [
            p.id,
            {
              taskflare: list.latency[p.id].latencyMs,
              floor: list.floorLatency[p.id].latencyMs,
              taskflare_rps: round(list.latency[p.id].rps, 1),
              floor_rps: round(list.floorLatency[p.id].rps, 1),
            },
          ]),
        ),
      },
    },
  };
}
