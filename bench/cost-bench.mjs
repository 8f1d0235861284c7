// 4. Cost per successful scheduled run and per task.
//
// Method: Taskflare's unmodified src/ runs behind a metering wrapper
// (bench/metered). Every D1 statement reports the rows_read/rows_written
// that the local D1 (the same SQLite engine and counters as production,
// index writes included) returns in its meta; queue sends, deliveries and
// acks, Durable Object RPC calls and alarms, DO storage calls and Worker
// invocations are counted on their bindings. A scenario resets the meter,
// does a known amount of work, waits until the receiver has every request
// and nothing metered happened for 1.5 s, then divides by the runs that
// succeeded. Net table rows before/after are kept as a cross-check.
import { join } from "node:path";
import { apiClient, listAll } from "./lib/api.mjs";
import { figure, valueAtMost } from "./lib/figures.mjs";
import { perUnit, resetMeter, tableRows, topStatements, waitQuiet } from "./lib/meter-client.mjs";
import { PRICE_SOURCES, PRICES_PER_MILLION, pricePerMillion, QSTASH_PER_MILLION } from "./lib/pricing.mjs";
import { apiToken, benchPath, startWorker } from "./lib/servers.mjs";
import { round } from "./lib/stats.mjs";
import { mapLimit, sleep, waitFor } from "./lib/wait.mjs";
import { startMetered } from "./metered/start.mjs";

/** Runs `work`, then measures until `done` holds and the Worker is quiet. */
async function measured(server, work, done) {
  const before = await tableRows(server);
  await resetMeter(server);
  const context = await work();
  await waitFor(() => done(context), { timeoutMs: 120_000, intervalMs: 200, what: "deliveries" });
  const meter = await waitQuiet(server);
  const after = await tableRows(server);
  const netRows = Object.fromEntries(Object.keys(after).map((t) => [t, after[t] - before[t]]));
  return { meter, netRows, context };
}

async function tasksScenario(server, receiver, { count, batch }) {
  const call = apiClient(server.url, apiToken());
  const path = `/cost/tasks-${batch ? "batch" : "single"}`;
  const target = { type: "http", method: "POST", url: `${receiver.url}${path}` };
  const { meter, netRows, context } = await measured(
    server,
    async () => {
      if (batch) {
        const requests = Array.from({ length: Math.ceil(count / 100) }, (_, i) => Math.min(100, count - i * 100));
        const res = await mapLimit(requests, 2, (n) =>
          call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ target })) }),
        );
        return { ids: res.flatMap((r) => r.items.map((i) => i.run?.id)) };
      }
      const res = await mapLimit(Array.from({ length: count }), 4, () => call("POST", "/v1/tasks", { target }));
      return { ids: res.map((r) => r.id) };
    },
    () => receiver.distinctCount(path) >= count,
  );
  const statuses = await mapLimit(context.ids, 8, async (id) => (await call("GET", `/v1/tasks/${id}`)).status);
  const succeeded = statuses.filter((s) => s === "succeeded").length;
  return { units: succeeded, requested: count, meter, netRows };
}

async function scheduledScenario(server, receiver, { fires }) {
  const call = apiClient(server.url, apiToken());
  const path = "/cost/scheduled";
  const start = Math.ceil((Date.now() + 4000) / 1000) * 1000;
  const end = start + (fires - 1) * 1000 + 500;
  const jobId = "bench-cost-1s";
  // Created before the meter starts: the job's definition is a one-off cost, not a per-run one.
  await call("PUT", `/v1/jobs/${jobId}`, {
    trigger: { type: "interval", seconds: 1 },
    start_date: new Date(start).toISOString(),
    end_date: new Date(end).toISOString(),
    target: { type: "http", method: "POST", url: `${receiver.url}${path}` },
  });
  await sleep(300);
  const { meter, netRows } = await measured(
    server,
    async () => null,
    () => Date.now() > end && receiver.distinctCount(path) >= fires,
  );
  const runs = await listAll(call, `/v1/jobs/${jobId}/runs`);
  const succeeded = runs.filter((r) => r.status === "succeeded").length;
  return { units: succeeded, requested: fires, meter, netRows, statuses: runs.map((r) => r.status) };
}

async function heartbeatScenario(server) {
  await resetMeter(server);
  const ticks = 3;
  for (let i = 0; i < ticks; i++) {
    await fetch(`${server.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`);
  }
  const meter = await waitQuiet(server, 1000);
  return { units: ticks, meter };
}

async function floorScheduled(workDir, receiver, fires) {
  const floor = await startWorker({
    name: "alarm-floor",
    config: benchPath("baselines", "alarm-floor", "wrangler.toml"),
    persistTo: join(workDir, "cost-alarm-floor"),
    logFile: join(workDir, "cost-alarm-floor.log"),
  });
  try {
    const path = "/cost/floor-scheduled";
    const start = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    const end = start + (fires - 1) * 1000 + 500;
    await fetch(`${floor.url}/start`, {
      method: "POST",
      body: JSON.stringify({ jobs: 1, interval_ms: 1000, start_at: start, end_at: end, receiver: `${receiver.url}${path}`, tag: "cost" }),
    });
    await fetch(`${floor.url}/meter/reset`, { method: "POST" });
    await waitFor(() => Date.now() > end && receiver.distinctCount(path) >= fires, { timeoutMs: 60_000, what: "floor fires" });
    await sleep(1000);
    return floorPerUnit(await (await fetch(`${floor.url}/meter`)).json(), fires);
  } finally {
    await floor.stop();
  }
}

async function floorTasks(workDir, count) {
  const floor = await startWorker({
    name: "queue-floor",
    config: benchPath("baselines", "queue-floor", "wrangler.toml"),
    persistTo: join(workDir, "cost-queue-floor"),
    logFile: join(workDir, "cost-queue-floor.log"),
  });
  try {
    await fetch(`${floor.url}/setup`, { method: "POST" });
    await fetch(`${floor.url}/meter/reset`, { method: "POST" });
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
    await sleep(500);
    const m = await (await fetch(`${floor.url}/meter`)).json();
    return floorPerUnit(m, count);
  } finally {
    await floor.stop();
  }
}

/** The floors count by hand; every delivered message is acked once. */
function floorPerUnit(m, units) {
  return {
    d1_rows_written: round(m.d1RowsWritten / units, 3),
    d1_rows_read: round(m.d1RowsRead / units, 3),
    queue_operations: round((m.queueSent + 2 * m.queueDelivered) / units, 3),
    durable_object_requests: round(((m.alarms ?? 0) + (m.doRpc ?? 0)) / units, 3),
  };
}

export async function runCost({ quick, workDir, receiver }) {
  const taskCount = quick ? 20 : 100;
  const batchCount = quick ? 100 : 200;
  const fires = quick ? 6 : 20;
  const server = await startMetered(join(workDir, "cost-metered"), join(workDir, "cost-metered.log"));
  let single, batch, scheduled, heartbeat;
  try {
    single = await tasksScenario(server, receiver, { count: taskCount, batch: false });
    batch = await tasksScenario(server, receiver, { count: batchCount, batch: true });
    scheduled = await scheduledScenario(server, receiver, { fires });
    heartbeat = await heartbeatScenario(server);
  } finally {
    await server.stop();
  }
  const floorFire = await floorScheduled(workDir, receiver, fires);
  const floorTask = await floorTasks(workDir, batchCount);

  const summarizeScenario = (s) => {
    const per = perUnit(s.meter, s.units);
    return {
      units: s.units,
      requested: s.requested,
      per_unit: per,
      price_per_million: pricePerMillion(per),
      net_rows: s.netRows,
      top_statements: topStatements(s.meter, s.units),
      meter: s.meter,
    };
  };
  const results = { scheduled: summarizeScenario(scheduled), task_single: summarizeScenario(single), task_batch: summarizeScenario(batch) };
  const tick = perUnit(heartbeat.meter, heartbeat.units);
  const complete = (s) => s.units === s.requested;

  const figures = [];
  const s = results.scheduled;
  figures.push(
    figure({
      id: "cost.scheduled.d1_rows_written",
      label: "D1 rows written / scheduled run",
      unit: "rows",
      value: s.per_unit.d1_rows_written,
      baseline: floorFire.d1_rows_written,
      baselineLabel: "alarm floor / fire",
      target: valueAtMost(8),
      valid: complete(scheduled),
      note: `${s.units}/${s.requested} runs succeeded`,
    }),
    figure({
      id: "cost.scheduled.d1_rows_read",
      label: "D1 rows read / scheduled run",
      unit: "rows",
      value: s.per_unit.d1_rows_read,
      baseline: floorFire.d1_rows_read,
      baselineLabel: "alarm floor / fire",
    }),
    figure({
      id: "cost.scheduled.queue_ops",
      label: "Queue operations / scheduled run",
      unit: "ops",
      value: s.per_unit.queue_operations,
      baseline: floorFire.queue_operations,
      baselineLabel: "alarm floor / fire",
    }),
    figure({
      id: "cost.scheduled.do_requests",
      label: "DO requests / scheduled run",
      unit: "req",
      value: s.per_unit.durable_object_requests,
      baseline: floorFire.durable_object_requests,
      baselineLabel: "alarm floor / fire",
    }),
    figure({
      id: "cost.scheduled.usd_per_million",
      label: "$ per million scheduled runs",
      unit: "USD",
      value: s.price_per_million.total,
      baseline: QSTASH_PER_MILLION,
      baselineLabel: "QStash pay-as-you-go",
    }),
  );
  for (const [key, label] of [
    ["task_single", "task (POST /v1/tasks)"],
    ["task_batch", "task (POST /v1/tasks/batch)"],
  ]) {
    const t = results[key];
    figures.push(
      figure({
        id: `cost.${key}.d1_rows_written`,
        label: `D1 rows written / ${label}`,
        unit: "rows",
        value: t.per_unit.d1_rows_written,
        baseline: floorTask.d1_rows_written,
        baselineLabel: "queue floor / message",
        valid: t.units === t.requested,
        note: `${t.units}/${t.requested} tasks succeeded`,
      }),
      figure({
        id: `cost.${key}.usd_per_million`,
        label: `$ per million ${label}`,
        unit: "USD",
        value: t.price_per_million.total,
        baseline: QSTASH_PER_MILLION,
        baselineLabel: "QStash pay-as-you-go",
      }),
    );
  }
  return {
    figures,
    details: {
      method:
        "Metering wrapper around unmodified src/ (bench/metered): D1 rows from each statement's own meta (local D1 = same SQLite row counters as production, index writes included); queue ops = sent + delivered + acked; DO requests = RPC calls + alarm invocations; Worker requests = fetch + queue + scheduled invocations; DO storage rows estimated as one per key/alarm change. Per unit = totals / succeeded runs, measured until the Worker was quiet for 1.5 s.",
      prices_per_million: PRICES_PER_MILLION,
      qstash_per_million: QSTASH_PER_MILLION,
      price_sources: PRICE_SOURCES,
      ...results,
      heartbeat_tick: {
        per_tick: tick,
        ticks_per_month: 43_200,
        usd_per_month: round(
          ((tick.d1_rows_read * PRICES_PER_MILLION.d1_rows_read +
            tick.d1_rows_written * PRICES_PER_MILLION.d1_rows_written +
            tick.worker_requests * PRICES_PER_MILLION.worker_requests) *
            43_200) /
            1e6,
          6,
        ),
      },
      floor_per_fire: floorFire,
      floor_per_task: floorTask,
    },
  };
}
