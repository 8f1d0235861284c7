import { database } from "../db/client";
import type { Env } from "../env";
import { log } from "../log";
import { recordHeartbeat } from "./state";

/** The Cron Trigger's work for one tick. A tick is a nudge: repeating one is harmless. */
export async function runHeartbeat(env: Env, scheduledTime: number, now = Date.now()): Promise<void> {
  await recordHeartbeat(database(env.DB), scheduledTime, now);
  log("info", "heartbeat", { scheduled_time: new Date(scheduledTime).toISOString() });
}
