import { database } from "../db/client";
import { type Env, readConfig } from "../env";
import { lastHeartbeat } from "../heartbeat/state";
import { jobObject } from "../jobs/present";
import { overdueJobs } from "../jobs/store";
import type { CheckOutcome, HealthCheck } from "./runner";

/** A heartbeat older than this means the Cron Trigger (or the local ticker) has stopped. */
export const HEARTBEAT_STALE_MS = 3 * 60_000;
const HEALTH_OBJECT_NAME = "__readiness__";

/** The scheduler_state row the write probe upserts. */
export const WRITE_PROBE_KEY = "readyz_probe";
/**
 * An isolate writes the probe row at most this often and reports its last
 * answer in between, so a monitor hammering /readyz costs D1 a write per
 * isolate every few seconds, not one per request.
 */
export const WRITE_PROBE_INTERVAL_MS = 5_000;
const lastWriteProbe = new WeakMap<D1Database, { at: number; outcome: CheckOutcome }>();

/**
 * Whether D1 takes a write: D1 can answer reads while it refuses writes, and
 * then nothing can be enqueued, claimed or recorded.
 */
async function probeWrite(db: D1Database, now: () => number): Promise<CheckOutcome> {
  const started = now();
  const last = lastWriteProbe.get(db);
  if (last && started >= last.at && started - last.at < WRITE_PROBE_INTERVAL_MS) return last.outcome;
  let outcome: CheckOutcome;
  try {
    await db
      .prepare(
        "INSERT INTO scheduler_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      )
      .bind(WRITE_PROBE_KEY, String(started), started)
      .run();
    outcome = { status: "pass", observedValue: now() - started, observedUnit: "ms" };
  } catch (error) {
    outcome = { status: "fail", output: `D1 refused a write: ${error instanceof Error ? error.message : String(error)}` };
  }
  lastWriteProbe.set(db, { at: started, outcome });
  return outcome;
}

/** The readiness checks behind /readyz, built over the live bindings; `verbose` names overdue jobs. */
export function readinessChecks(env: Env, now: () => number = Date.now, verbose = false): HealthCheck[] {
  return [
    {
      name: "d1:responseTime",
      critical: true,
      timeoutMs: 2_000,
      async run() {
        const started = now();
        await env.DB.prepare("SELECT 1 AS ok").first();
        return { status: "pass", observedValue: now() - started, observedUnit: "ms" };
      },
    },
    {
      name: "d1:write",
      critical: true,
      timeoutMs: 2_000,
      run: () => probeWrite(env.DB, now),
    },
    {
      name: "queue:binding",
      critical: true,
      timeoutMs: 500,
      async run() {
        const bound = [env.TASK_QUEUE, env.HIGH_QUEUE].every((q) => typeof q?.send === "function");
        return bound
          ? { status: "pass", observedValue: true }
          : { status: "fail", observedValue: false, output: "TASK_QUEUE or HIGH_QUEUE binding is missing" };
      },
    },
    {
      name: "durableObject:responseTime",
      critical: true,
      timeoutMs: 2_000,
      async run() {
        const started = now();
        const stub = jobObject(env, HEALTH_OBJECT_NAME);
        const echoed = await stub.ping(started);
        if (echoed !== started) return { status: "fail", output: "JobObject echoed a different value" };
        return { status: "pass", observedValue: now() - started, observedUnit: "ms" };
      },
    },
    {
      name: "configuration:apiToken",
      critical: true,
      timeoutMs: 100,
      async run() {
        const config = readConfig(env);
        if (config.apiToken) return { status: "pass", observedValue: true };
        if (config.localDevelopment) {
          return { status: "warn", observedValue: false, output: "API_TOKEN not set; the API is open (local development)" };
        }
        return { status: "fail", observedValue: false, output: "API_TOKEN is not set: run `wrangler secret put API_TOKEN`" };
      },
    },
    {
      name: "jobs:successDeadlines",
      critical: false,
      timeoutMs: 2_000,
      async run() {
        const overdue = await overdueJobs(database(env.DB), now(), 20);
        if (overdue.length === 0) return { status: "pass", observedValue: 0 };
        const ids = overdue.map((job) => job.id);
        return {
          status: "warn",
          observedValue: overdue.length,
          output: verbose
            ? `no success within expect_success_within: ${ids.join(", ")}`
            : `${overdue.length} job(s) past their success deadline (?verbose=1 names them)`,
        };
      },
    },
    {
      name: "scheduler:heartbeat",
      critical: false,
      timeoutMs: 2_000,
      async run() {
        const last = await lastHeartbeat(database(env.DB));
        if (last === undefined) return { status: "warn", output: "no heartbeat recorded yet" };
        const ageSeconds = Math.max(0, Math.round((now() - last) / 1000));
        const stale = now() - last > HEARTBEAT_STALE_MS;
        return {
          status: stale ? "warn" : "pass",
          observedValue: ageSeconds,
          observedUnit: "s",
          ...(stale ? { output: "no Cron Trigger tick for over 3 minutes" } : {}),
        };
      },
    },
  ];
}
