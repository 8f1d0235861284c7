// The least work a per-job alarm scheduler can do per fire: the alarm
// records the fire in D1 and enqueues it; the consumer delivers it. What
// Taskflare adds on top (decisions, leases, run states, stats) is its overhead.
import { DurableObject } from "cloudflare:workers";

// Same isolate as the Durable Objects under wrangler dev, so one meter sees all.
const meter = { d1RowsRead: 0, d1RowsWritten: 0, d1Queries: 0, queueSent: 0, queueDelivered: 0, alarms: 0, doRpc: 0, workerRequests: 0 };

function count(result) {
  meter.d1Queries++;
  meter.d1RowsRead += result.meta?.rows_read ?? 0;
  meter.d1RowsWritten += result.meta?.rows_written ?? 0;
}

export class FireObject extends DurableObject {
  /** Arms this job's clock: fires every `interval_ms` from `start_at` through `end_at`. */
  async start(config) {
    meter.doRpc++;
    this.config = config;
    this.next = config.start_at;
    await this.ctx.storage.put({ config, next: this.next });
    await this.ctx.storage.setAlarm(this.next);
  }

  async alarm() {
    meter.alarms++;
    if (!this.config) {
      this.config = await this.ctx.storage.get("config");
      this.next = await this.ctx.storage.get("next");
    }
    const { config } = this;
    const scheduledFor = this.next;
    const id = `${config.job}-${scheduledFor}`;
    count(
      await this.env.DB.prepare("INSERT INTO fires (id, job, scheduled_for) VALUES (?, ?, ?)").bind(id, config.job, scheduledFor).run(),
    );
    await this.env.FIRE_QUEUE.send({ id, scheduled_for: scheduledFor, receiver: config.receiver }, { contentType: "json" });
    meter.queueSent++;
    this.next = scheduledFor + config.interval_ms;
    if (this.next <= config.end_at) {
      await this.ctx.storage.put("next", this.next);
      await this.ctx.storage.setAlarm(this.next);
    }
  }
}

export default {
  async fetch(request, env) {
    meter.workerRequests++;
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/start") {
      const { jobs, interval_ms, start_at, end_at, receiver, tag } = await request.json();
      await env.DB.prepare(
        "CREATE TABLE IF NOT EXISTS fires (id TEXT PRIMARY KEY, job TEXT NOT NULL, scheduled_for INTEGER NOT NULL)",
      ).run();
      await Promise.all(
        Array.from({ length: jobs }, (_, i) =>
          env.FIRE_OBJECT.get(env.FIRE_OBJECT.idFromName(`${tag}-${i}`)).start({
            job: `${tag}-${i}`,
            interval_ms,
            start_at,
            end_at,
            receiver,
          }),
        ),
      );
      return Response.json({ started: jobs });
    }
    if (url.pathname === "/meter") return Response.json(meter);
    if (request.method === "POST" && url.pathname === "/meter/reset") {
      for (const key of Object.keys(meter)) meter[key] = 0;
      return Response.json(meter);
    }
    return new Response("alarm-floor");
  },

  async queue(batch) {
    meter.workerRequests++;
    if (batch.queue.endsWith("dead-letter")) return batch.ackAll();
    await Promise.all(
      batch.messages.map(async (message) => {
        meter.queueDelivered++;
        const { id, scheduled_for: scheduledFor, receiver } = message.body;
        const res = await fetch(receiver, { method: "POST", headers: { "webhook-id": id, "x-scheduled-for": String(scheduledFor) } });
        await res.body?.cancel();
        message.ack();
      }),
    );
  },
};
