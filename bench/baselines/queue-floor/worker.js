// The least work a queue-backed task runner that keeps tasks with their
// owner can do per task: enqueue it, then, when it is consumed, one row in
// the Durable Object shard that owns it, written in one call per shard per
// batch. Messages of a batch are handled concurrently, as Taskflare's
// consumer does. With `receiver` set, each message also POSTs to it first:
// the floor of a runner whose tasks are HTTP calls (a second baseline).
import { DurableObject } from "cloudflare:workers";

const SHARDS = 16;

export class DoneShard extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS done (id TEXT PRIMARY KEY, tag TEXT NOT NULL, at INTEGER NOT NULL)");
  }

  record(tag, ids) {
    const at = Date.now();
    for (const id of ids) this.ctx.storage.sql.exec("INSERT OR IGNORE INTO done (id, tag, at) VALUES (?, ?, ?)", id, tag, at);
  }

  progress(tag) {
    return this.ctx.storage.sql.exec("SELECT count(*) AS done, max(at) AS last_at FROM done WHERE tag = ?", tag).one();
  }
}

const shardOf = (id) => {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
  return hash % SHARDS;
};
const shard = (env, n) => env.DONE_SHARD.get(env.DONE_SHARD.idFromName(`shard-${n}`));

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/setup") return Response.json({ ok: true });
    if (request.method === "POST" && url.pathname === "/enqueue") {
      const { tag, from, count, receiver } = await request.json();
      // sendBatch: the cheapest way to enqueue 100 (one call, one round trip).
      await env.WORK_QUEUE.sendBatch(
        Array.from({ length: count }, (_, i) => ({ body: { tag, id: `${tag}-${from + i}`, receiver }, contentType: "json" })),
      );
      return Response.json({ enqueued: count });
    }
    if (url.pathname === "/progress") {
      const tag = url.searchParams.get("tag");
      const rows = await Promise.all(Array.from({ length: SHARDS }, (_, n) => shard(env, n).progress(tag)));
      return Response.json({
        done: rows.reduce((sum, r) => sum + r.done, 0),
        last_at: Math.max(0, ...rows.map((r) => r.last_at ?? 0)) || null,
      });
    }
    return new Response("queue-floor");
  },

  async queue(batch, env) {
    if (batch.queue.endsWith("dead-letter")) return batch.ackAll();
    const byShard = new Map();
    await Promise.all(
      batch.messages.map(async (message) => {
        const { tag, id, receiver } = message.body;
        if (receiver) {
          const res = await fetch(receiver, { method: "POST", headers: { "webhook-id": id } });
          await res.body?.cancel();
        }
        const n = shardOf(id);
        const entry = byShard.get(n) ?? { tag, ids: [] };
        entry.ids.push(id);
        byShard.set(n, entry);
      }),
    );
    await Promise.all([...byShard].map(([n, { tag, ids }]) => shard(env, n).record(tag, ids)));
    batch.ackAll();
  },
};
