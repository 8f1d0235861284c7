// Reads the metered build's counters (bench/metered) and turns them into
// per-unit operation counts, the units bench/lib/pricing.mjs prices.
import { DO_MEMORY_GB } from "./pricing.mjs";
import { round } from "./stats.mjs";
import { sleep, waitFor } from "./wait.mjs";

// An overloaded Worker can take a minute to answer; one that never does must not hang the benchmark.
const get = async (server, path) => (await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(180_000) })).json();
export const readMeter = (server) => get(server, "/__bench/meter");
export const resetMeter = (server) => get(server, "/__bench/meter/reset");
export const tableRows = (server) => get(server, "/__bench/rows");

/**
 * Waits until nothing is in flight (no Worker invocation, no Durable Object
 * invocation or background work) and nothing metered has happened for
 * `quietMs`: the work has settled.
 */
export async function waitQuiet(server, quietMs = 1500, timeoutMs = 60_000) {
  await sleep(quietMs);
  return waitFor(
    async () => {
      const m = await readMeter(server);
      const idle = m.in_flight.workers === 0 && m.in_flight.durable_objects === 0;
      return idle && m.now - m.last_activity_at >= quietMs ? m : null;
    },
    { timeoutMs, intervalMs: 300, what: "the metered Worker to go quiet" },
  );
}

/** Durable Object active time in GB-s at the billed 128 MB. */
export const gbSeconds = (ms) => (ms / 1000) * DO_MEMORY_GB;

/** Billable operations per unit of work (per run, per task) from one meter snapshot; the priced keys match PRICES_PER_MILLION. */
export function perUnit(m, units) {
  const q = m.queues;
  const s = m.do_storage;
  const d = m.durable_objects;
  const per = (n, digits = 3) => round(n / units, digits);
  return {
    d1_rows_written: per(m.d1.rows_written),
    d1_rows_read: per(m.d1.rows_read),
    do_rows_written: per(s.sql_rows_written + s.kv_rows_written),
    do_rows_read: per(s.sql_rows_read + s.kv_rows_read),
    do_alarm_writes: per(s.alarm_sets + s.alarm_deletes),
    durable_object_requests: per(d.requests),
    do_duration_gb_s: per(gbSeconds(d.active_ms), 6),
    // A delivered-and-acked message is a write, a read and a delete; a retried delivery, one more read.
    queue_operations: per(q.messages_sent + q.delivered + q.acked + q.implicitly_acked),
    worker_requests: per(m.workers.requests),
    // Not priced: where the priced lines come from.
    d1_statements: per(m.d1.statements),
    do_sql_statements: per(s.sql_statements),
    do_sql_rows_written: per(s.sql_rows_written),
    do_kv_rows_written: per(s.kv_rows_written),
    do_set_alarm: per(s.alarm_sets),
    do_delete_alarm: per(s.alarm_deletes),
    do_active_ms: per(d.active_ms, 2),
    do_invocation_ms: per(d.invocation_ms, 2),
    do_stub_calls: per(d.stub_calls),
  };
}

/** Per class of Durable Object: requests by method, active time and storage rows, per unit. */
export function perClass(m, units) {
  const classes = new Set([...Object.keys(m.durable_objects.by_class), ...Object.keys(m.do_storage.by_class)]);
  return Object.fromEntries(
    [...classes].map((name) => {
      const c = m.durable_objects.by_class[name] ?? { requests: 0, by_method: {}, active_ms: 0, invocation_ms: 0, instances: 0, failed: 0 };
      const s = m.do_storage.by_class[name] ?? {};
      return [
        name,
        {
          requests: round(c.requests / units, 3),
          by_method: Object.fromEntries(Object.entries(c.by_method).map(([k, v]) => [k, round(v / units, 3)])),
          active_ms: round(c.active_ms / units, 2),
          invocation_ms: round(c.invocation_ms / units, 2),
          rows_written: round(((s.sql_rows_written ?? 0) + (s.kv_rows_written ?? 0)) / units, 3),
          rows_read: round(((s.sql_rows_read ?? 0) + (s.kv_rows_read ?? 0)) / units, 3),
          alarm_writes: round(((s.alarm_sets ?? 0) + (s.alarm_deletes ?? 0)) / units, 3),
          kv_rows_written_by_key: Object.fromEntries(Object.entries(s.kv_written_by_key ?? {}).map(([k, v]) => [k, round(v / units, 3)])),
          instances_created: c.instances,
          failed_invocations: c.failed,
        },
      ];
    }),
  );
}

/** The statements that wrote the most rows, per unit (D1's, or `"do"` for Durable Object SQL): where the cost comes from. */
export function topStatements(m, units, limit = 12, source = "d1") {
  const statements = source === "do" ? m.do_storage.by_statement : m.d1.by_statement;
  return Object.entries(statements)
    .map(([statement, s]) => ({
      statement,
      per_unit: round(s.statements / units, 3),
      rows_written_per_unit: round(s.rows_written / units, 3),
      rows_read_per_unit: round(s.rows_read / units, 3),
    }))
    .sort((a, b) => b.rows_written_per_unit - a.rows_written_per_unit || b.rows_read_per_unit - a.rows_read_per_unit)
    .slice(0, limit);
}
