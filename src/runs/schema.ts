import { z } from "@hono/zod-openapi";
import { Target } from "../execution/target-schema";
import { IsoDateTime } from "../scheduling/trigger-schema";
import type { RunRow } from "./store";
import { RUN_STATUSES } from "./transitions";

export const RunStatus = z.enum(RUN_STATUSES).openapi("RunStatus");

const iso = z.string().datetime().nullable();

/** A run as the API returns it. */
export const Run = z
  .object({
    id: z.string(),
    job_id: z.string().nullable(),
    status: RunStatus,
    attempt: z.number().int(),
    max_attempts: z.number().int(),
    priority: z.string(),
    scheduled_for: z.string().datetime(),
    next_attempt_at: iso.openapi({ description: "When a scheduled or retrying run's next attempt is due" }),
    started_at: iso,
    finished_at: iso,
    duration_ms: z.number().int().nullable(),
    job_version: z.number().int().nullable(),
    request_id: z.string().nullable(),
    retry_of: z.string().nullable(),
    parent_run_id: z.string().nullable().openapi({ description: "For callback and alert runs: the run they report on" }),
    expires_at: iso,
    deferred_reason: z.string().nullable().openapi({ description: "Why the next attempt waits without spending an attempt" }),
    target: Target,
    result: z.unknown().nullable(),
    error: z.unknown().nullable(),
    created_at: z.string().datetime(),
  })
  .openapi("Run");

export type Run = z.infer<typeof Run>;

/** One finished attempt of a run. */
export const RunAttempt = z
  .object({
    attempt: z.number().int(),
    started_at: z.string().nullable(),
    finished_at: z.string(),
    duration_ms: z.number().int().nullable(),
    outcome: z.enum(["succeeded", "failed", "retrying", "dead"]),
    status_code: z.number().int().nullable(),
    error: z.string().nullable(),
  })
  .openapi("RunAttempt");
export const RunAttempts = z.object({ run_id: z.string(), items: z.array(RunAttempt) }).openapi("RunAttempts");

export const RunList = z.object({ items: z.array(Run), next_cursor: z.string().nullable() }).openapi("RunList");

const toIso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Maps a stored run to its wire shape. */
export function toRun(row: RunRow): Run {
  const waiting = row.status === "scheduled" || row.status === "retrying" || row.status === "queued";
  return {
    id: row.id,
    job_id: row.jobId,
    status: row.status as Run["status"],
    attempt: row.attempt,
    max_attempts: row.maxAttempts,
    priority: row.priority,
    scheduled_for: new Date(row.scheduledFor).toISOString(),
    next_attempt_at: waiting ? toIso(row.availableAt) : null,
    started_at: toIso(row.startedAt),
    finished_at: toIso(row.finishedAt),
    duration_ms: row.durationMs,
    job_version: row.jobVersion,
    request_id: row.requestId,
    retry_of: row.retryOf,
    parent_run_id: row.parentRunId,
    expires_at: toIso(row.expiresAt),
    deferred_reason: row.deferredReason,
    target: row.target as Run["target"],
    result: row.result ?? null,
    error: row.error ?? null,
    created_at: new Date(row.createdAt).toISOString(),
  };
}

/** Query of `GET /v1/runs`. */
export const RunListQuery = z.object({
  status: RunStatus.optional().openapi({ description: "failed or dead without job_id: every owner's, from the failure index" }),
  job_id: z.string().min(1).max(200).optional().openapi({ description: "The job's runs (without it: the tasks)" }),
  since: IsoDateTime.optional().openapi({ description: "Created at or after (failures: finished at or after)" }),
  until: IsoDateTime.optional().openapi({ description: "Created before (failures: finished before)" }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
