import type { Env } from "../env";
import type { RunRow } from "../runs/store";

/** Follow-up once a run reaches a final status: releases its job's in-flight lease. */
export async function onRunFinished(env: Env, run: RunRow): Promise<void> {
  if (!run.jobId) return;
  const stub = env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(run.jobId));
  await stub.releaseLease(run.id);
}
