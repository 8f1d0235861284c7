import type { Env } from "../env";
import type { JobAlerts } from "../jobs/schema";
import type { JobRow } from "../jobs/store";
import { log } from "../log";
import { createRun } from "../runs/create";
import { runTimeoutSeconds } from "../runs/run-timeout";
import type { AlertState, AlertToSend, JobEvent } from "./alerts";

/**
 * Delivers a job's alerts as runs (signed, retried, visible), high priority.
 * One run per incident and kind: the idempotency key makes a repeated event
 * send nothing more.
 */
export async function sendJobAlerts(
  env: Env,
  job: JobRow,
  config: JobAlerts,
  alerts: AlertToSend[],
  state: AlertState,
  event: JobEvent,
  runId: string | null,
): Promise<void> {
  for (const alert of alerts) {
    const body = {
      event: alert.event,
      job_id: job.id,
      job_name: job.name,
      incident_started_at: new Date(alert.incidentAt).toISOString(),
      run_id: runId,
      status: event.kind === "outcome" ? event.status : null,
      consecutive_failures: state.streak,
      ...(alert.recovered ? { recovered: alert.recovered } : {}),
    };
    await createRun(env, {
      target: { ...config.target, body },
      dueAt: Date.now(),
      priority: "high",
      retry: undefined,
      timeoutSeconds: runTimeoutSeconds(config.target, undefined),
      requestId: null,
      parentRunId: runId,
      idempotencyKey: `alert:${job.id}:${alert.event}:${alert.incidentAt}`,
    });
    log("warn", "job_alert", { job_id: job.id, event: alert.event, run_id: runId });
  }
}
