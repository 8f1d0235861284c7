import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Env } from "../../src/env";
import { ownerOfRun } from "../../src/ids";
import type { RunOwner } from "../../src/ledger/run-owner";
import { taskShardCount } from "../../src/runs/create";
import type { RunRow } from "../../src/runs/store";

// Runs live with their owners (a job's JobObject, a task shard). These helpers read and,
// for test setup only, change a run where its owner keeps it.

/** The Durable Object that keeps a run, and the key it answers to; undefined for D1's runs. */
function ownerStub(runId: string) {
  const ref = ownerOfRun(runId);
  if (ref?.kind === "job") return { stub: env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(ref.jobId)), key: ref.jobId };
  if (ref?.kind === "shard") return { stub: env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${ref.shard}`)), key: String(ref.shard) };
  return undefined;
}

/** Whether a run is kept by an owner (not by D1). */
export function isOwned(runId: string): boolean {
  return ownerStub(runId) !== undefined;
}

/** A run as its owner keeps it, or undefined. */
export async function ownedRun(runId: string): Promise<RunRow | undefined> {
  const owner = ownerStub(runId);
  if (!owner) return undefined;
  const [run] = (await owner.stub.getRuns(owner.key, [runId])) as unknown as (RunRow | null)[];
  return run ?? undefined;
}

/** Test setup only: changes fields of a run where its owner keeps it (as time passing, or a vanished consumer, would). */
export async function changeOwnedRun(runId: string, patch: Partial<RunRow>): Promise<void> {
  const owner = ownerStub(runId);
  if (!owner) throw new Error(`run ${runId} has no owner`);
  await runInDurableObject(owner.stub as DurableObjectStub, async (instance: unknown) => {
    const runs = (instance as { runs(key: string): RunOwner }).runs(owner.key);
    const run = runs.ledger.get(runId);
    if (!run) throw new Error(`run ${runId} is not in its owner`);
    const changed = { ...run, ...patch };
    runs.ledger.save(changed);
    if (runs.pending.has(runId)) runs.pending.set(runId, changed);
  });
}

/** Adds every owner's ended runs to the statistics now: the task shards, and the JobObjects of `jobIds`. */
export async function flushStats(jobIds: string[] = []): Promise<void> {
  await Promise.all([
    ...Array.from({ length: taskShardCount(env) }, (_, n) =>
      env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${n}`)).flushStats(String(n)),
    ),
    ...jobIds.map((id) => env.JOB_OBJECT.get(env.JOB_OBJECT.idFromName(id)).flushStats(id)),
  ]);
}

/** Every run kept by the owner of `runId` (a job's JobObject or a task shard), newest first. */
export async function runsOfOwnerOf(runId: string): Promise<RunRow[]> {
  const owner = ownerStub(runId);
  if (!owner) throw new Error(`run ${runId} has no owner`);
  return (await owner.stub.listRuns(owner.key, { limit: 100_000 })) as unknown as RunRow[];
}

/** The runs of every task shard whose idempotency key is `key` (it can only be in one). */
export async function tasksWithKey(key: string): Promise<RunRow[]> {
  const all = await Promise.all(
    Array.from({ length: taskShardCount(env) }, (_, n) =>
      env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${n}`)).listRuns(String(n), { limit: 100_000 }),
    ),
  );
  return (all.flat() as unknown as RunRow[]).filter((run) => run.idempotencyKey === key);
}

/**
 * Test setup only: every task shard's current instance uses `bindings` (a harness's recording
 * queues, say) until it is evicted, so what a shard sends by itself (upkeep) is seen too.
 */
export async function useBindingsInTaskShards(bindings: Partial<Env>): Promise<void> {
  await Promise.all(
    Array.from({ length: taskShardCount(env) }, (_, n) =>
      runInDurableObject(env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${n}`)), (instance: unknown) => {
        const holder = instance as { env: Env };
        holder.env = { ...holder.env, ...bindings };
      }),
    ),
  );
}
