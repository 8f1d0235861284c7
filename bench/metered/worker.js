// Taskflare, unmodified, with every billable operation counted on the way
// through: D1 statements (their own meta.rows_read / rows_written), queue
// sends and deliveries, Durable Object requests (RPC calls and alarms) and
// Worker invocations. Read the meter at GET /__bench/meter.
import taskflare, { JobObject as TaskflareJobObject } from "../../src/index.ts";

// Every other entry point (e.g. RPC entrypoints named in wrangler.toml), unchanged.
export * from "../../src/index.ts";

import { meter, meterBatch, meterEnv, meterStorage, tableRows } from "./meter.js";

export class JobObject extends TaskflareJobObject {
  constructor(ctx, env) {
    // Before super(): the parent's constructor already reads storage.
    meterStorage(ctx.storage);
    super(ctx, meterEnv(env, "durable-object"));
  }

  async alarm(info) {
    meter.durableObjectRequest("alarm");
    return super.alarm(info);
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/meter") return Response.json(meter.snapshot());
    if (url.pathname === "/__bench/meter/reset") return Response.json(meter.reset());
    if (url.pathname === "/__bench/rows") return Response.json(await tableRows(env.DB));
    meter.workerRequest("fetch");
    return taskflare.fetch(request, meterEnv(env, "fetch"), ctx);
  },
  async queue(batch, env, ctx) {
    meter.workerRequest("queue");
    return taskflare.queue(meterBatch(batch), meterEnv(env, "queue"), ctx);
  },
  async scheduled(controller, env, ctx) {
    meter.workerRequest("scheduled");
    return taskflare.scheduled(controller, meterEnv(env, "scheduled"), ctx);
  },
};
