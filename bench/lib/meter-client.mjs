// Reads the metered Taskflare build's counters (bench/metered) and turns
// them into per-unit operation counts.
import { round } from "./stats.mjs";
import { sleep, waitFor } from "./wait.mjs";

export const readMeter = async (server) => (await fetch(`${server.url}/__bench/meter`)).json();
export const resetMeter = async (server) => (await fetch(`${server.url}/__bench/meter/reset`)).json();
export const tableRows = async (server) => (await fetch(`${server.url}/__bench/rows`)).json();

/** Waits until nothing metered has happened for `quietMs`: in-flight work has settled. */
export async function waitQuiet(server, quietMs = 1500, timeoutMs = 60_000) {
  await sleep(quietMs);
  return waitFor(
    async () => {
      const m = await readMeter(server);
      return m.now - m.last_activity_at >= quietMs ? m : null;
    },
    { timeoutMs, intervalMs: 300, what: "the metered Worker to go quiet" },
  );
}

/** Billable operations per unit of work (per run, per task) from one meter snapshot. */
export function perUnit(m, units) {
  const q = m.queues;
  return {
    d1_rows_written: round(m.d1.rows_written / units, 3),
    d1_rows_read: round(m.d1.rows_read / units, 3),
    d1_statements: round(m.d1.statements / units, 3),
    // A delivered-and-acked message is a write, a read and a delete.
    queue_operations: round((q.messages_sent + q.delivered + q.acked) / units, 3),
    durable_object_requests: round(m.durable_objects.requests / units, 3),
    worker_requests: round(m.workers.requests / units, 3),
    // Estimate: one SQLite row per key written, plus one per alarm change.
    do_storage_rows_written: round((m.do_storage.keys_written + m.do_storage.keys_deleted + m.do_storage.alarm_writes) / units, 3),
    do_storage_rows_read: round((m.do_storage.keys_read + m.do_storage.alarm_reads) / units, 3),
  };
}

/** The statements that wrote the most rows, per unit: where the cost comes from. */
export function topStatements(m, units, limit = 12) {
  return Object.entries(m.d1.by_statement)
    .map(([statement, s]) => ({
      statement,
      per_unit: round(s.statements / units, 3),
      rows_written_per_unit: round(s.rows_written / units, 3),
      rows_read_per_unit: round(s.rows_read / units, 3),
    }))
    .sort((a, b) => b.rows_written_per_unit - a.rows_written_per_unit || b.rows_read_per_unit - a.rows_read_per_unit)
    .slice(0, limit);
}
