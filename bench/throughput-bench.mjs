// 3. Throughput: tasks per second from the first enqueue request to the last
// run's `succeeded` (its finished_at, so polling does not inflate the time),
// against a bare queue consumer writing one row per message into the
// Durable Object shard that owns it (the end is the last write's timestamp). Both enqueue 100 per request, 4 requests in
// flight. Each size is measured in three floor-then-Taskflare pairs and the
// figure is the pair with the median ratio (the machine's speed drifts within
// minutes by more than a figure's margin). A second floor (smallest size only)
// also POSTs each message to the receiver, as every HTTP task must: how much of
// the gap the outbound call explains.
import { join } from "node:path";
import { apiClient, listAll } from "./lib/api.mjs";
import { figure, ratioAtLeast } from "./lib/figures.mjs";
import { runTimes } from "./lib/run-log.mjs";
import { apiToken, benchPath, startTaskflare, startWorker } from "./lib/servers.mjs";
import { round, summarize } from "./lib/stats.mjs";
import { mapLimit, waitFor } from "./lib/wait.mjs";

const PER_REQUEST = 100;
/** Floor-then-Taskflare pairs measured per size; the figure is the median pair. */
const pairRounds = (quick) => (quick ? 1 : 3);
const round2 = (x) => Math.round(x * 100) / 100;
const IN_FLIGHT = 4;

const chunks = (n) =>
  Array.from({ length: Math.ceil(n / PER_REQUEST) }, (_, i) => ({
    from: i * PER_REQUEST,
    count: Math.min(PER_REQUEST, n - i * PER_REQUEST),
  }));
/** Generous: a local consumer that stalls completely should fail the run, not hang it. */
const deadlineMs = (n) => 60_000 + n * 40;

async function taskflareRound(server, receiver, n) {
  const call = apiClient(server.url, apiToken());
  // Unique per round: the receiver and the floor's table outlive a round.
  const path = `/throughput/${n}-${Date.now()}`;
  const target = { type: "http", method: "POST", url: `${receiver.url}${path}` };
  const t0 = Date.now();
  const responses = await mapLimit(chunks(n), IN_FLIGHT, ({ count }) =>
    call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: count }, () => ({ target })) }),
  );
  const enqueuedMs = Date.now() - t0;
  const refused = responses.flatMap((r) => r.items).filter((i) => i.status !== 202).length;
  await waitFor(() => receiver.distinctCount(path) >= n - refused, {
    timeoutMs: deadlineMs(n),
    intervalMs: 200,
    what: `${n} Taskflare deliveries`,
  });
  // The receiver saw every request; each run turns succeeded just after its response.
  const since = new Date(t0 - 1000).toISOString();
  const succeeded = await waitFor(
    async () => {
      const runs = await listAll(call, `/v1/runs?status=succeeded&since=${encodeURIComponent(since)}`);
      const mine = runs.filter((r) => r.target?.url?.endsWith(path));
      return mine.length >= n - refused ? mine : null;
    },
    { timeoutMs: 60_000, intervalMs: 1000, what: `${n} succeeded runs` },
  );
  const lastFinished = Math.max(...succeeded.map((r) => Date.parse(r.finished_at)));
  const seconds = (lastFinished - t0) / 1000;
  // Where a task's time goes: waiting in the queue vs its own attempt (claim to succeeded).
  const stages = { queued_to_claimed_ms: [], claimed_to_succeeded_ms: [] };
  for (const r of succeeded) {
    const t = runTimes(r);
    if (t?.created === undefined || t.claimed === undefined || t.finished === undefined) continue;
    stages.queued_to_claimed_ms.push(t.claimed - t.created);
    stages.claimed_to_succeeded_ms.push(t.finished - t.claimed);
  }
  return {
    stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, summarize(v)])),
    tasks: n,
    refused,
    duplicates: receiver.arrivals(path).length - receiver.distinctCount(path),
    enqueue_seconds: round(enqueuedMs / 1000, 2),
    seconds: round(seconds, 2),
    tasks_per_second: round(n / seconds, 1),
  };
}

async function floorRound(server, n, receiver) {
  const tag = `tp${n}${receiver ? "-fetch" : ""}-${Date.now()}`;
  const t0 = Date.now();
  await mapLimit(chunks(n), IN_FLIGHT, async ({ from, count }) => {
    const res = await fetch(`${server.url}/enqueue`, {
      method: "POST",
      body: JSON.stringify({ tag, from, count, receiver: receiver ? `${receiver.url}/throughput-floor/${n}` : undefined }),
    });
    if (!res.ok) throw new Error(`queue-floor /enqueue -> ${res.status}: ${await res.text()}`);
  });
  const enqueuedMs = Date.now() - t0;
  const progress = await waitFor(
    async () => {
      const p = await (await fetch(`${server.url}/progress?tag=${tag}`)).json();
      return p.done >= n ? p : null;
    },
    { timeoutMs: deadlineMs(n), intervalMs: 250, what: `${n} floor writes` },
  );
  const seconds = (progress.last_at - t0) / 1000;
  return { tasks: n, enqueue_seconds: round(enqueuedMs / 1000, 2), seconds: round(seconds, 2), tasks_per_second: round(n / seconds, 1) };
}

export async function runThroughput({ quick, workDir, receiver }) {
  const sizes = quick ? [200, 1000] : [1000, 5000, 10000];
  // Both servers stay up and their rounds alternate, so a change in the
  // machine's load (other work shares the cores) hits each pair alike.
  const taskflare = await startTaskflare({
    persistTo: join(workDir, "throughput-taskflare"),
    logFile: join(workDir, "throughput-taskflare.log"),
  });
  const floor = await startWorker({
    name: "queue-floor",
    config: benchPath("baselines", "queue-floor", "wrangler.toml"),
    persistTo: join(workDir, "throughput-floor"),
    logFile: join(workDir, "throughput-floor.log"),
  });
  const taskflareResults = [];
  const floorResults = [];
  const fetchFloorResults = [];
  /** Every pair measured, by size: the figure is the pair with the median ratio. */
  const pairs = [];
  try {
    await fetch(`${floor.url}/setup`, { method: "POST" });
    for (const n of sizes) {
      // A few pairs, each floor then Taskflare back to back: the machine's speed drifts by more
      // than the figure's margin within minutes, and the median pair's ratio is steadier than one.
      const measured = [];
      for (let round = 0; round < pairRounds(quick); round++) {
        const floorResult = await floorRound(floor, n);
        const taskflareResult = await taskflareRound(taskflare, receiver, n);
        measured.push({
          floor: floorResult,
          taskflare: taskflareResult,
          ratio: round2(taskflareResult.tasks_per_second / floorResult.tasks_per_second),
        });
      }
      const median = [...measured].sort((a, b) => a.ratio - b.ratio)[Math.floor(measured.length / 2)];
      pairs.push({ tasks: n, ratios: measured.map((m) => m.ratio) });
      floorResults.push(median.floor);
      taskflareResults.push(median.taskflare);
      // The HTTP-call floor is diagnostic: the smallest size is enough.
      if (n === sizes[0]) fetchFloorResults.push(await floorRound(floor, n, receiver));
    }
  } finally {
    await taskflare.stop();
  }
  // The default LOG_LEVEL (info) writes a line per finished run, which wrangler dev
  // relays through its own process; the floor writes none. The largest size again
  // at LOG_LEVEL=warn shows what that costs (informational).
  const largest = sizes[sizes.length - 1];
  let quiet;
  const quietServer = await startTaskflare({
    persistTo: join(workDir, "throughput-taskflare-warn"),
    logFile: join(workDir, "throughput-taskflare-warn.log"),
    logLevel: "warn",
  });
  try {
    quiet = { floor: await floorRound(floor, largest), taskflare: await taskflareRound(quietServer, receiver, largest) };
  } finally {
    await quietServer.stop();
    await floor.stop();
  }
  const figures = sizes.flatMap((n, i) => {
    const t = taskflareResults[i];
    const valid = t.refused === 0;
    const withFetch = fetchFloorResults[i];
    return [
      figure({
        id: `throughput.${n}`,
        label: `${n.toLocaleString("en")} tasks end to end`,
        unit: "tasks/s",
        value: t.tasks_per_second,
        baseline: floorResults[i].tasks_per_second,
        baselineLabel: "queue floor (1 DO row/msg)",
        target: ratioAtLeast(0.5),
        note: valid
          ? `${t.seconds} s (enqueue ${t.enqueue_seconds} s); floor ${floorResults[i].seconds} s; median of ${pairs[i].ratios.length} pairs (${pairs[i].ratios.join(", ")})`
          : `${t.refused} tasks refused`,
        valid,
      }),
      withFetch &&
        figure({
          id: `throughput.${n}.vs_fetch_floor`,
          label: `${n.toLocaleString("en")} tasks, vs floor + HTTP call`,
          unit: "tasks/s",
          value: t.tasks_per_second,
          baseline: withFetch.tasks_per_second,
          baselineLabel: "queue floor + POST to receiver",
          valid,
        }),
    ].filter(Boolean);
  });
  figures.push(
    figure({
      id: `throughput.${largest}.log_level_warn`,
      label: `${largest.toLocaleString("en")} tasks, LOG_LEVEL=warn`,
      unit: "tasks/s",
      value: quiet.taskflare.tasks_per_second,
      baseline: quiet.floor.tasks_per_second,
      baselineLabel: "queue floor (1 DO row/msg)",
      note: `${quiet.taskflare.seconds} s; floor ${quiet.floor.seconds} s`,
      valid: quiet.taskflare.refused === 0,
    }),
  );
  return {
    figures,
    details: {
      per_request: PER_REQUEST,
      in_flight: IN_FLIGHT,
      taskflare: taskflareResults,
      floor: floorResults,
      floor_with_fetch: fetchFloorResults,
      pairs,
      log_level_warn: quiet,
    },
  };
}
