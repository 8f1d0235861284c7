// 4. Cost per successful scheduled run and per task, for targets that answer
// in 200 ms, 2 s and 10 s.
//
// Method: the Worker's unmodified code runs behind a metering wrapper
// (bench/metered) that counts every billable operation where it happens:
// D1 rows from each statement's own meta; Durable Object SQLite rows from
// each cursor's own rowsRead/rowsWritten (key-value calls at one row per
// key), every setAlarm/deleteAlarm, every request an object receives (RPC
// calls, fetches, alarms) and how long it stays active; queue sends,
// deliveries and acks; Worker invocations. A scenario resets the meter, does
// a known amount of work, waits until the receiver has answered every request
// and nothing is in flight or metered for 1.5 s, then divides by the runs
// that succeeded. The floors run behind the same wrapper.
import { join } from "node:path";
import { apiClient, listAll } from "./lib/api.mjs";
import { costTable } from "./lib/cost-table.mjs";
import { figure, valueAtMost } from "./lib/figures.mjs";
import { perClass, perUnit, resetMeter, tableRows, topStatements, waitQuiet } from "./lib/meter-client.mjs";
import { PRICE_SOURCES, PRICES_PER_MILLION, pricePerMillion, QSTASH_PER_MILLION } from "./lib/pricing.mjs";
import { apiToken, benchPath } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";
import { storageBytes } from "./lib/storage-bytes.mjs";
import { mapLimit, sleep, waitFor } from "./lib/wait.mjs";
import { startMetered } from "./metered/start.mjs";

const DELAYS = [
  { id: "200ms", label: "200 ms", ms: 200 },
  { id: "2s", label: "2 s", ms: 2000 },
  { id: "10s", label: "10 s", ms: 10_000 },
];

/** How much work each scenario does: enough runs that one-off costs (a job's first fire, an hour's first stats row) amortise. */
function plan(quick) {
  return {
    fires: { "200ms": quick ? 10 : 60, "2s": quick ? 6 : 30, "10s": quick ? 6 : 30 },
    tasks: { "200ms": quick ? 30 : 300, "2s": quick ? 20 : 100, "10s": quick ? 20 : 100 },
    batchTasks: quick ? 100 : 300,
    floorFires: quick ? 6 : 20,
    floorTasks: quick ? 100 : 200,
  };
}

/** Runs `work`, then measures until `done` holds and the Worker is quiet. */
async function measured(server, { work, done, timeoutMs }) {
  const before = await tableRows(server);
  await resetMeter(server);
  const context = await work();
  await waitFor(() => done(context), { timeoutMs, intervalMs: 200, what: "the receiver's answers" });
  const meter = await waitQuiet(server);
  const after = await tableRows(server);
  const netRows = Object.fromEntries(Object.keys(after).map((t) => [t, after[t] - (before[t] ?? 0)]));
  return { meter, netRows, context };
}

async function tasksScenario(server, receiver, { count, batch, delay }) {
  const call = apiClient(server.url, apiToken());
  const path = `/cost/tasks-${batch ? "batch" : "single"}-${delay.id}`;
  const target = { type: "http", method: "POST", url: `${receiver.url}${path}?delay_ms=${delay.ms}` };
  const { meter, netRows, context } = await measured(server, {
    async work() {
      if (batch) {
        const sizes = Array.from({ length: Math.ceil(count / 100) }, (_, i) => Math.min(100, count - i * 100));
        const res = await mapLimit(sizes, 2, (n) =>
          call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ target })) }),
        );
        return { ids: res.flatMap((r) => r.items.map((i) => i.run?.id)) };
      }
      const res = await mapLimit(Array.from({ length: count }), 4, () => call("POST", "/v1/tasks", { target }));
      return { ids: res.map((r) => r.id) };
    },
    done: () => receiver.answeredCount(path) >= count,
    timeoutMs: 120_000 + count * delay.ms,
  });
  const statuses = await mapLimit(context.ids, 8, async (id) => (await call("GET", `/v1/tasks/${id}`)).status);
  return { units: statuses.filter((s) => s === "succeeded").length, requested: count, meter, netRows };
}

async function scheduledScenario(server, receiver, { fires, delay }) {
  const call = apiClient(server.url, apiToken());
  const path = `/cost/scheduled-${delay.id}`;
  const start = Math.ceil((Date.now() + 4000) / 1000) * 1000;
  const end = start + (fires - 1) * 1000 + 500;
  const jobId = `bench-cost-${delay.id}`;
  // Created before the meter starts: the job's definition is a one-off cost, not a per-run one.
  // A job whose runs end before its next fire keeps the default max_instances (1); one firing
  // every second at a slow target needs room for the runs still in flight.
  await call("PUT", `/v1/jobs/${jobId}`, {
    trigger: { type: "interval", seconds: 1 },
    start_date: new Date(start).toISOString(),
    end_date: new Date(end).toISOString(),
    max_instances: delay.ms < 1000 ? 1 : Math.min(100, 1 + 3 * Math.ceil(delay.ms / 1000)),
    target: { type: "http", method: "POST", url: `${receiver.url}${path}?delay_ms=${delay.ms}` },
  });
  await sleep(300);
  const { meter, netRows } = await measured(server, {
    work: async () => null,
    done: () => Date.now() > end && receiver.answeredCount(path) >= fires,
    timeoutMs: 120_000 + fires * 1000 + 3 * delay.ms,
  });
  const runs = await listAll(call, `/v1/jobs/${jobId}/runs`);
  const statuses = {};
  for (const r of runs) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return { units: statuses.succeeded ?? 0, requested: fires, meter, netRows, statuses };
}

async function heartbeatScenario(server) {
  await resetMeter(server);
  const ticks = 3;
  for (let i = 0; i < ticks; i++) await fetch(`${server.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`);
  const meter = await waitQuiet(server, 1000);
  return { units: ticks, meter };
}

/** The alarm floor (alarm -> one row of its own SQLite -> fetch) behind the same meter: its cost per fire. */
async function floorScheduled(workDir, receiver, fires) {
  const floor = await startMetered(join(workDir, "cost-alarm-floor"), join(workDir, "cost-alarm-floor.log"), {
    config: benchPath("baselines", "alarm-floor", "wrangler.toml"),
    name: "alarm-floor-metered",
  });
  try {
    const path = "/cost/floor-scheduled";
    const start = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    const end = start + (fires - 1) * 1000 + 500;
    await fetch(`${floor.url}/start`, {
      method: "POST",
      body: JSON.stringify({ jobs: 1, interval_ms: 1000, start_at: start, end_at: end, receiver: `${receiver.url}${path}`, tag: "cost" }),
    });
    await resetMeter(floor);
    await waitFor(() => Date.now() > end && receiver.answeredCount(path) >= fires, { timeoutMs: 60_000, what: "floor fires" });
    return { units: fires, requested: fires, meter: await waitQuiet(floor, 1000) };
  } finally {
    await floor.stop();
  }
}

/** The queue floor (enqueue, one shard row per message) behind the same meter: its cost per message. */
async function floorTasks(workDir, count) {
  const floor = await startMetered(join(workDir, "cost-queue-floor"), join(workDir, "cost-queue-floor.log"), {
    config: benchPath("baselines", "queue-floor", "wrangler.toml"),
    name: "queue-floor-metered",
  });
  try {
    await fetch(`${floor.url}/setup`, { method: "POST" });
    await resetMeter(floor);
    for (let from = 0; from < count; from += 100) {
      await fetch(`${floor.url}/enqueue`, {
        method: "POST",
        body: JSON.stringify({ tag: "cost", from, count: Math.min(100, count - from) }),
      });
    }
    await waitFor(async () => (await (await fetch(`${floor.url}/progress?tag=cost`)).json()).done >= count, {
      timeoutMs: 60_000,
      what: "floor tasks",
    });
    return { units: count, requested: count, meter: await waitQuiet(floor, 1000) };
  } finally {
    await floor.stop();
  }
}

function summarize(s) {
  const per = perUnit(s.meter, s.units || 1);
  return {
    units: s.units,
    requested: s.requested,
    statuses: s.statuses,
    per_unit: per,
    price_per_million: pricePerMillion(per),
    per_class: perClass(s.meter, s.units || 1),
    net_rows: s.netRows,
    top_statements: topStatements(s.meter, s.units || 1),
    top_do_statements: topStatements(s.meter, s.units || 1, 12, "do"),
    meter: s.meter,
  };
}

// The billable lines, in the order the table lists them, with the figure label of each.
const LINES = [
  ["d1_rows_written", "D1 rows written", "rows"],
  ["d1_rows_read", "D1 rows read", "rows"],
  ["do_rows_written", "DO SQLite rows written", "rows"],
  ["do_rows_read", "DO SQLite rows read", "rows"],
  ["do_alarm_writes", "DO setAlarm/deleteAlarm", "rows"],
  ["durable_object_requests", "DO requests", "req"],
  ["do_duration_gb_s", "DO duration", "GB-s"],
  ["queue_operations", "Queue operations", "ops"],
  ["worker_requests", "Worker requests", "req"],
];

/**
 * Every billable line of one scenario as a figure, beside the floor's; D1 rows
 * written carries the brief's 0.2. GB-s per run are tiny, so that line is
 * given per million units, the unit its price is quoted in.
 */
function lineFigures(key, label, result, floor, floorLabel) {
  const valid = result.units === result.requested;
  return LINES.map(([line, name, unit]) => {
    const scale = unit === "GB-s" ? 1e6 : 1;
    return figure({
      id: `cost.${key}.${line}`,
      label: `${name} / ${label}`,
      unit: scale === 1 ? unit : `${unit} per M`,
      value: result.per_unit[line] * scale,
      baseline: floor.per_unit[line] * scale,
      baselineLabel: floorLabel,
      target: line === "d1_rows_written" ? valueAtMost(0.2) : null,
      valid,
      note: line === "d1_rows_written" ? `${result.units}/${result.requested} succeeded` : null,
    });
  });
}

/** Bytes a row of `table` takes in `store`, indexes included (informational; the capacity arithmetic uses it). */
function storageFigure(storage, store, table, label) {
  const t = storage[store]?.tables[table];
  return figure({
    id: `cost.storage.${store}.${table}`,
    label: `bytes / ${label}`,
    unit: "B",
    value: t?.bytes_per_row ?? null,
    note: t ? `${t.rows} rows in ${storage[store].objects} database(s); payload ${t.payload_per_row} B a row` : "no rows",
  });
}

function priceFigure(key, label, result, target) {
  return figure({
    id: `cost.${key}.usd_per_million`,
    label: `$ per million ${label}`,
    unit: "USD",
    value: result.price_per_million.total,
    baseline: QSTASH_PER_MILLION,
    baselineLabel: "QStash pay-as-you-go",
    target: target === null ? null : valueAtMost(target),
    valid: result.units === result.requested,
    note: `${result.units}/${result.requested} succeeded; DO ${round(result.per_unit.do_duration_gb_s, 5)} GB-s`,
  });
}

export async function runCost({ quick, workDir, receiver }) {
  const p = plan(quick);
  const raw = {};
  const server = await startMetered(join(workDir, "cost-metered"), join(workDir, "cost-metered.log"));
  let heartbeat;
  try {
    for (const delay of DELAYS) {
      raw[`scheduled_${delay.id}`] = await scheduledScenario(server, receiver, { fires: p.fires[delay.id], delay });
      raw[`task_${delay.id}`] = await tasksScenario(server, receiver, { count: p.tasks[delay.id], batch: false, delay });
    }
    raw.task_batch_200ms = await tasksScenario(server, receiver, { count: p.batchTasks, batch: true, delay: DELAYS[0] });
    heartbeat = await heartbeatScenario(server);
  } finally {
    await server.stop();
  }
  // Every run of the scenarios above, as the stopped server left them on disk.
  const storage = storageBytes(join(workDir, "cost-metered"));
  const floorFire = summarize(await floorScheduled(workDir, receiver, p.floorFires));
  const floorTask = summarize(await floorTasks(workDir, p.floorTasks));
  const results = Object.fromEntries(Object.entries(raw).map(([k, s]) => [k, summarize(s)]));

  const figures = [
    ...lineFigures("scheduled_200ms", "scheduled run, 200 ms target", results.scheduled_200ms, floorFire, "alarm floor / fire"),
    priceFigure("scheduled_200ms", "scheduled runs, 200 ms target", results.scheduled_200ms, 5),
    priceFigure("scheduled_2s", "scheduled runs, 2 s target", results.scheduled_2s, 13),
    priceFigure("scheduled_10s", "scheduled runs, 10 s target", results.scheduled_10s, 13),
    ...lineFigures("task_200ms", "task, 200 ms target", results.task_200ms, floorTask, "queue floor / message"),
    priceFigure("task_200ms", "tasks (POST /v1/tasks), 200 ms target", results.task_200ms, 6),
    priceFigure("task_batch_200ms", "tasks (POST /v1/tasks/batch), 200 ms target", results.task_batch_200ms, null),
    priceFigure("task_2s", "tasks, 2 s target", results.task_2s, null),
    priceFigure("task_10s", "tasks, 10 s target", results.task_10s, null),
    storageFigure(storage, "JobObject", "runs", "scheduled run stored (JobObject SQLite)"),
    storageFigure(storage, "TaskShard", "runs", "task stored (TaskShard SQLite)"),
    storageFigure(storage, "d1", "job_stats", "hourly statistics row (D1)"),
    storageFigure(storage, "d1", "jobs", "job definition (D1)"),
  ];
  const tick = perUnit(heartbeat.meter, heartbeat.units);
  const columns = [
    ["scheduled 200 ms", results.scheduled_200ms],
    ["scheduled 2 s", results.scheduled_2s],
    ["scheduled 10 s", results.scheduled_10s],
    ["task 200 ms", results.task_200ms],
    ["task 2 s", results.task_2s],
    ["task 10 s", results.task_10s],
    ["task, batch of 100", results.task_batch_200ms],
    ["alarm floor", floorFire],
    ["queue floor", floorTask],
  ];
  return {
    figures,
    table: costTable(columns, LINES),
    details: {
      method:
        "Metering wrapper around the unmodified Worker (bench/metered). D1 rows: each statement's own meta. DO SQLite rows: each cursor's rowsRead/rowsWritten, read after every step (index entries included); key-value calls one row per key. DO alarm writes: every setAlarm and deleteAlarm. DO requests: every RPC call, fetch and alarm an object receives. DO duration: wall-clock time from an invocation's entry to its settlement (plus its blockConcurrencyWhile and waitUntil work), overlapping invocations of one object counted once, at 128 MB. Queue ops: sent + delivered + acked (explicitly or by the platform). Worker requests: fetch, queue and scheduled invocations. Per unit = totals / succeeded runs, measured until the receiver answered every request and nothing was in flight or metered for 1.5 s.",
      plan: p,
      prices_per_million: PRICES_PER_MILLION,
      qstash_per_million: QSTASH_PER_MILLION,
      price_sources: PRICE_SOURCES,
      ...results,
      heartbeat_tick: {
        per_tick: tick,
        ticks_per_month: 43_200,
        usd_per_month: round((pricePerMillion(tick).total * 43_200) / 1e6, 6),
      },
      storage,
      floor_per_fire: floorFire,
      floor_per_task: floorTask,
    },
  };
}
