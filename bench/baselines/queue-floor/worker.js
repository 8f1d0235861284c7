// The least work a queue-backed task runner can do per task: enqueue it,
// then one D1 write when it is consumed. Messages of a batch are handled
// concurrently, as Taskflare's consumer does. With `receiver` set, each
// message also POSTs to it first: the floor of a runner whose tasks are
// HTTP calls (a second, informational baseline).
const meter = { d1RowsRead: 0, d1RowsWritten: 0, d1Queries: 0, queueSent: 0, queueDelivered: 0, workerRequests: 0 };

export default {
  async fetch(request, env) {
    meter.workerRequests++;
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/setup") {
      await env.DB.prepare("CREATE TABLE IF NOT EXISTS done (id TEXT PRIMARY KEY, tag TEXT NOT NULL, at INTEGER NOT NULL)").run();
      await env.DB.prepare("CREATE INDEX IF NOT EXISTS done_tag ON done (tag, at)").run();
      return Response.json({ ok: true });
    }
    if (request.method === "POST" && url.pathname === "/enqueue") {
      const { tag, from, count, receiver } = await request.json();
      // sendBatch: the cheapest way to enqueue 100 (one call, one round trip).
      await env.WORK_QUEUE.sendBatch(
        Array.from({ length: count }, (_, i) => ({ body: { tag, id: `${tag}-${from + i}`, receiver }, contentType: "json" })),
      );
      meter.queueSent += count;
      return Response.json({ enqueued: count });
    }
    if (url.pathname === "/progress") {
      const row = await env.DB.prepare("SELECT count(*) AS done, max(at) AS last_at FROM done WHERE tag = ?")
        .bind(url.searchParams.get("tag"))
        .first();
      return Response.json(row);
    }
    if (url.pathname === "/meter") return Response.json(meter);
    if (request.method === "POST" && url.pathname === "/meter/reset") {
      for (const key of Object.keys(meter)) meter[key] = 0;
      return Response.json(meter);
    }
    return new Response("queue-floor");
  },

  async queue(batch, env) {
    meter.workerRequests++;
    if (batch.queue.endsWith("dead-letter")) return batch.ackAll();
    await Promise.all(
      batch.messages.map(async (message) => {
        meter.queueDelivered++;
        const { tag, id, receiver } = message.body;
        if (receiver) {
          const res = await fetch(receiver, { method: "POST", headers: { "webhook-id": id } });
          await res.body?.cancel();
        }
        const result = await env.DB.prepare("INSERT OR IGNORE INTO done (id, tag, at) VALUES (?, ?, ?)").bind(id, tag, Date.now()).run();
        meter.d1Queries++;
        meter.d1RowsRead += result.meta.rows_read ?? 0;
        meter.d1RowsWritten += result.meta.rows_written ?? 0;
        message.ack();
      }),
    );
  },
};
