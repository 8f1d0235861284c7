// Published list prices beyond the included monthly usage (Workers Paid),
// in US dollars per million units. Checked against Cloudflare's and Upstash's
// pricing pages; prices move, so the JSON output carries them too.
export const PRICES_PER_MILLION = {
  d1_rows_written: 1.0, // D1: $1.00 per million rows written
  d1_rows_read: 0.001, // D1: $0.001 per million rows read
  queue_operations: 0.4, // Queues: $0.40 per million operations (write, read, delete: 3 per message)
  durable_object_requests: 0.15, // Durable Objects: $0.15 per million requests (RPC calls and alarms)
  worker_requests: 0.3, // Workers Standard: $0.30 per million requests
  // SQLite-backed Durable Object storage bills rows like D1 (since January 2026).
  do_storage_rows_written: 1.0,
  do_storage_rows_read: 0.001,
};

/** Upstash QStash pay-as-you-go: $1 per 100,000 messages; a schedule's fire or a published task is one message. */
export const QSTASH_PER_MILLION = 10;

export const PRICE_SOURCES = [
  "https://developers.cloudflare.com/d1/platform/pricing/",
  "https://developers.cloudflare.com/queues/platform/pricing/",
  "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  "https://developers.cloudflare.com/workers/platform/pricing/",
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
