// 6. Scale: with 10,000 jobs defined, (a) the heartbeat's D1 rows read per
// tick, against the same tick on an empty database, and (b) the latency of
// GET /v1/jobs pages, against a bare Worker running the same keyset SELECT
// over the same SQLite file.
//
// The jobs are inserted straight into the local D1 (wrangler d1 execute)
// before any server starts: active interval jobs whose first fire is in
// 2099, with next_run_at set as the JobObject would record it. They have no
// JobObject (no alarm armed), which changes nothing the heartbeat or the
// list reads: both only query D1. Active (not paused) is the worst case for
// the heartbeat, whose scan is over active jobs.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { figure, ratioAtMost } from "./lib/figures.mjs";
import { load } from "./lib/load.mjs";
import { perUnit, resetMeter, topStatements, waitQuiet } from "./lib/meter-client.mjs";
import { apiToken, applyMigrations, benchPath, bin, runSync, startTaskflare, startWorker } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";
import { startMetered } from "./metered/start.mjs";

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

async function heartbeatRowsPerTick(server, ticks) {
  await resetMeter(server);
  for (let i = 0; i < ticks; i++) await fetch(`${server.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`);
  const meter = await waitQuiet(server, 1000);
  return { per_tick: perUnit(meter, ticks), top_statements: topStatements(meter, ticks, 6) };
}

async function listRowsRead(server, path) {
  await resetMeter(server);
  await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${apiToken()}` } });
  const meter = await waitQuiet(server, 300);
  return meter.d1.rows_read;
}

export async function runScale({ quick, workDir }) {
  const jobs = quick ? 1000 : 10_000;
  const seconds = quick ? 2 : 5;
  const dir = join(workDir, "scale");
  const seedFile = join(workDir, "scale-seed.sql");
  const seedStarted = Date.now();
  applyMigrations(dir);
  writeFileSync(seedFile, seedSql(jobs, Date.now()));
  runSync(bin("wrangler"), ["d1", "execute", "DB", "--local", "--persist-to", dir, "--file", seedFile]);
  const seedSeconds = round((Date.now() - seedStarted) / 1000, 1);

  // Same pages on both servers: first page at 50 and 200, and a page from the middle.
  const pages = [
    { id: "limit50", label: "GET /v1/jobs?limit=50", query: "limit=50" },
    { id: "limit200", label: "GET /v1/jobs?limit=200", query: "limit=200" },
    {
      id: "limit50_mid",
      label: "GET /v1/jobs?limit=50 (mid cursor)",
      query: `limit=50&cursor=bench-scale-${String(Math.floor(jobs / 2)).padStart(5, "0")}`,
    },
  ];
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

  const metered = await startMetered(dir, join(workDir, "scale-metered.log"));
  let heartbeat;
  const listRows = {};
  try {
    heartbeat = await heartbeatRowsPerTick(metered, 3);
    for (const p of pages) listRows[p.id] = await listRowsRead(metered, `/v1/jobs?${p.query}`);
  } finally {
    await metered.stop();
  }
  const empty = await startMetered(join(workDir, "scale-empty"), join(workDir, "scale-empty-metered.log"));
  let emptyHeartbeat;
  try {
    emptyHeartbeat = await heartbeatRowsPerTick(empty, 3);
  } finally {
    await empty.stop();
  }

  const figures = [
    figure({
      id: "scale.heartbeat.d1_rows_read",
      label: `heartbeat D1 rows read / tick, ${jobs.toLocaleString("en")} jobs`,
      unit: "rows",
      value: heartbeat.per_tick.d1_rows_read,
      baseline: emptyHeartbeat.per_tick.d1_rows_read,
      baselineLabel: "same tick, 0 jobs",
      // The brief sets no number; the design says a tick's cost grows with late work, not with all jobs.
      target: ratioAtMost(2, "derived: heartbeat cost must not grow with job count (src/heartbeat/tick.ts)"),
      valid: seeded === jobs,
      note: seeded === jobs ? null : `seeded ${seeded} of ${jobs} jobs`,
    }),
  ];
  for (const p of pages) {
    const errors = latency[p.id].non2xx + latency[p.id].socketErrors;
    for (const q of ["p50", "p99"]) {
      figures.push(
        figure({
          id: `scale.${p.id}.${q}`,
          label: `${p.label} ${q}`,
          unit: "ms",
          value: latency[p.id].latencyMs[q],
          baseline: floorLatency[p.id].latencyMs[q],
          baselineLabel: "bare D1 SELECT Worker",
          valid: errors === 0,
          note: errors ? `${errors} errors` : `${listRows[p.id]} D1 rows read per request`,
        }),
      );
    }
  }
  return {
    figures,
    details: {
      jobs,
      seeded,
      seed: {
        method: "INSERT ... VALUES via wrangler d1 execute --local --file, before any server starts",
        state: "active",
        first_fire: "2099-01-01T00:00:00Z",
        job_objects: "none (no alarms armed)",
        seconds: seedSeconds,
      },
      latency_settings: { connections: 1, seconds },
      heartbeat,
      empty_heartbeat: emptyHeartbeat,
      list_rows_read: listRows,
      latency_ms: Object.fromEntries(
        pages.map((p) => [
          p.id,
          {
            taskflare: latency[p.id].latencyMs,
            floor: floorLatency[p.id].latencyMs,
            taskflare_rps: round(latency[p.id].rps, 1),
            floor_rps: round(floorLatency[p.id].rps, 1),
          },
        ]),
      ),
    },
  };
}
