// Published list prices beyond the included monthly usage (Workers Paid),
// in US dollars per million units. Checked against Cloudflare's and Upstash's
// pricing pages; prices move, so the JSON output carries them too.
export const PRICES_PER_MILLION = {
  d1_rows_written: 1.0, // D1: $1.00 per million rows written (index entries included)
  d1_rows_read: 0.001, // D1: $0.001 per million rows read
  // SQLite-backed Durable Object storage bills rows like D1 (since January 2026), index entries included.
  do_rows_written: 1.0,
  do_rows_read: 0.001,
  // Each setAlarm (and deleteAlarm) is a row written to the object's storage.
  do_alarm_writes: 1.0,
  durable_object_requests: 0.15, // Durable Objects: $0.15 per million requests (RPC calls, fetches and alarms)
  // Durable Objects: $12.50 per million GB-s of wall-clock time while an object is active, awaiting I/O included, at 128 MB.
  do_duration_gb_s: 12.5,
  queue_operations: 0.4, // Queues: $0.40 per million operations (write, read, delete: 3 per message; a retry is one more read)
  worker_requests: 0.3, // Workers Standard: $0.30 per million requests (fetch, queue batch, scheduled)
};

/** Memory a Durable Object is billed for, whatever it uses: 128 MB, which the pricing page's examples count as 128/1024 GB. */
export const DO_MEMORY_GB = 128 / 1024;

/** Upstash QStash pay-as-you-go: $1 per 100,000 messages; a schedule's fire or a published task is one message. */
export const QSTASH_PER_MILLION = 10;

export const PRICE_SOURCES = [
  "https://developers.cloudflare.com/d1/platform/pricing/",
  "https://developers.cloudflare.com/queues/platform/pricing/",
  "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  "https://developers.cloudflare.com/workers/platform/pricing/",
  "https://developers.cloudflare.com/durable-objects/platform/pricing/#sqlite-storage-backend",
  "https://upstash.com/docs/qstash/overall/pricing",
];

/** Dollars per million units of work, line by line, from per-unit operation counts. */
export function pricePerMillion(perUnit) {
  const lines = Object.fromEntries(
    Object.entries(PRICES_PER_MILLION).map(([k, price]) => [k, Math.round((perUnit[k] ?? 0) * price * 10_000) / 10_000]),
  );
  const total = Object.values(lines).reduce((s, v) => s + v, 0);
  return { lines, total: Math.round(total * 10_000) / 10_000 };
}
