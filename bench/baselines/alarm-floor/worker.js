// The least work a per-job alarm scheduler that keeps runs with their owner
// can do per fire: the alarm writes the fire as one row of its own SQLite,
// calls the receiver, and sets the next alarm. What Taskflare adds on top
// (decisions, leases, run states, retries, stats) is its overhead.
import { DurableObject } from "cloudflare:workers";

export class FireObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS fires (id TEXT PRIMARY KEY, scheduled_for INTEGER NOT NULL)");
  }

  /** Arms this job's clock: fires every `interval_ms` from `start_at` through `end_at`. */
  async start(config) {
    this.config = config;
    this.next = config.start_at;
    await this.ctx.storage.put({ config, next: this.next });
    await this.ctx.storage.setAlarm(this.next);
  }

  async alarm() {
    if (!this.config) {
      this.config = await this.ctx.storage.get("config");
      this.next = await this.ctx.storage.get("next");
    }
    const { config } = this;
    const scheduledFor = this.next;
    const id = `${config.job}-${scheduledFor}`;
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO fires (id, scheduled_for) VALUES (?, ?)", id, scheduledFor);
    const res = await fetch(config.receiver, { method: "POST", headers: { "webhook-id": id, "x-scheduled-for": String(scheduledFor) } });
    await res.body?.cancel();
    this.next = scheduledFor + config.interval_ms;
    if (this.next <= config.end_at) {
      await this.ctx.storage.put("next", this.next);
      await this.ctx.storage.setAlarm(this.next);
    }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/start") {
      const { jobs, interval_ms, start_at, end_at, receiver, tag } = await request.json();
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
    return new Response("alarm-floor");
  },
};
