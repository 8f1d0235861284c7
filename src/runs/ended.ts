/**
 * What happens when a run ends, whoever owns it: its callback (QStash's
 * callback and failureCallback) becomes a run of its own, and a failed or
 * dead run enters the failure index in D1 (the dashboard's latest failures,
 * GET /v1/runs?status=failed). A run that succeeds without a callback costs
 * nothing here. Every step is idempotent, so a repeated follow-up changes nothing.
 */
import type { Env } from "../env";
import type { HttpTarget } from "../execution/target-schema";
import { createRuns } from "./create";
import { type Run, toRun } from "./schema";
import type { RunRow } from "./store";

const DEFAULT_CALLBACK_TIMEOUT_SECONDS = 30;

/** The callback a finished run asks for, if any: `callback` on success, `failure_callback` on failed or dead. */
export function callbackFor(run: RunRow): HttpTarget | undefined {
  if (run.status === "succeeded") return (run.callback ?? undefined) as HttpTarget | undefined;
  if (run.status === "failed" || run.status === "dead") return (run.failureCallback ?? undefined) as HttpTarget | undefined;
  return undefined;
}

/** Follows up runs that just ended: their callbacks, and the failure index for those that failed. */
export async function followUpEndedRuns(env: Env, runs: RunRow[]): Promise<void> {
  const callbacks = runs.flatMap((run) => {
    const callback = callbackFor(run);
    if (!callback) return [];
    return [
      {
        target: { ...callback, body: { event: `run.${run.status}`, run: toRun(run) } },
        dueAt: Date.now(),
        priority: run.priority === "high" ? ("high" as const) : ("default" as const),
        retry: undefined,
        timeoutSeconds: callback.timeout ?? DEFAULT_CALLBACK_TIMEOUT_SECONDS,
        requestId: run.requestId,
        parentRunId: run.id,
        // A repeated follow-up finds this key taken and creates no second callback.
        idempotencyKey: `callback:${run.id}`,
      },
    ];
  });
  const failed = runs.filter((run) => run.status === "failed" || run.status === "dead");
  await Promise.all([
    callbacks.length > 0 ? throwFirstError(createRuns(env, callbacks)) : undefined,
    failed.length > 0 ? indexFailures(env.DB, failed.map(toRun)) : undefined,
  ]);
}

async function throwFirstError(results: Promise<({ error: unknown } | object)[]>): Promise<void> {
  const failure = (await results).find((r): r is { error: unknown } => "error" in r);
  if (failure) throw failure.error;
}

/** Adds runs that failed to the failure index (once each). */
async function indexFailures(d1: D1Database, runs: Run[]): Promise<void> {
  const statement = d1.prepare(
    "INSERT INTO run_failures (id, job_id, status, finished_at, run) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
  );
  await d1.batch(
    runs.map((run) =>
      statement.bind(run.id, run.job_id, run.status, Date.parse(run.finished_at ?? new Date().toISOString()), JSON.stringify(run)),
    ),
  );
}
