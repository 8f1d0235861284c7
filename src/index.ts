import { createApp } from "./app";
import type { Env } from "./env";
import { consumeBatch } from "./execution/consumer";
import { runHeartbeat } from "./heartbeat/tick";
import { useLogLevel } from "./log";

export { HostGuard } from "./hosts/host-guard";
export { TaskflareRPC } from "./rpc";
export { JobObject } from "./scheduling/job-object";
export { TaskShard } from "./tasks/task-shard";

const app = createApp();

export default {
  fetch: (request, env, ctx) => {
    useLogLevel(env.LOG_LEVEL);
    return app.fetch(request, env, ctx);
  },
  queue: (batch, env, _ctx) => {
    useLogLevel(env.LOG_LEVEL);
    return consumeBatch(batch, env);
  },
  scheduled: async (controller, env, _ctx) => {
    useLogLevel(env.LOG_LEVEL);
    return runHeartbeat(env, controller.scheduledTime, controller.cron);
  },
} satisfies ExportedHandler<Env>;
