import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { onTestFinished } from "vitest";
import type { Env } from "../../src/env";
import { ownerOfRun, shardOfKey } from "../../src/ids";
import type { RunOwner } from "../../src/ledger/run-owner";
import { taskShardCount } from "../../src/runs/create";
import type { RunRow } from "../../src/runs/store";
import type { TaskShard } from "../../src/tasks/task-shard";

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

/** The task shard `n`'s Durable Object. */
export function taskShardStub(n: number) {
  return env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${n}`));
}

/** The number of the task shard that keeps a task's run. */
export function shardOf(runId: string): number {
  const ref = ownerOfRun(runId);
  if (ref?.kind !== "shard") throw new Error(`run ${runId} is not kept by a task shard`);
  return ref.shard;
}

/** An Idempotency-Key (starting `prefix`) that the deployment keeps in task shard `shard`: test setup that places tasks. */
export function keyInShard(shard: number, prefix = "key"): string {
  for (;;) {
    const key = `${prefix}-${crypto.randomUUID()}`;
    if (shardOfKey(key, taskShardCount(env)) === shard) return key;
  }
}

/**
 * Test setup only: the task shards (every one, or those listed) use `bindings` in place of their
 * own (a harness's recording queues, so what their upkeep sends is seen; a faulty D1) until the
 * test ends, when their own come back.
 */
export async function useBindingsInTaskShards(bindings: Partial<Env>, shards?: number[]): Promise<void> {
  const which = shards ?? Array.from({ length: taskShardCount(env) }, (_, n) => n);
  const own = new Map<number, Env>();
  await Promise.all(
    which.map((n) =>
      runInDurableObject(taskShardStub(n), (instance: TaskShard) => {
        const holder = instance as unknown as { env: Env };
        own.set(n, holder.env);
        holder.env = { ...holder.env, ...bindings };
      }),
    ),
  );
  onTestFinished(async () => {
    await Promise.all(
      which.map((n) =>
        runInDurableObject(taskShardStub(n), (instance: TaskShard) => {
          (instance as unknown as { env: Env }).env = own.get(n) ?? env;
        }),
      ),
    );
  });
}

/** When the owner of `runId` has asked to be woken (its upkeep alarm), or null. */
export async function ownerAlarmOf(runId: string): Promise<number | null> {
  const owner = ownerStub(runId);
  if (!owner) throw new Error(`run ${runId} has no owner`);
  return runInDurableObject(owner.stub as DurableObjectStub, (_instance, state) => state.storage.getAlarm());
}

/** The owner of `runId`'s alarm fires now (its upkeep runs), as the platform fires it; false when none was set. */
export async function runOwnerAlarm(runId: string): Promise<boolean> {
  const owner = ownerStub(runId);
  if (!owner) throw new Error(`run ${runId} has no owner`);
  return runDurableObjectAlarm(owner.stub as DurableObjectStub);
}

/**
 * Every task shard alarm that is due by now fires (except in shards `skip` names: an object that
 * is down runs no alarm). An alarm that throws is gone, as when the platform's retries of it run
 * out; the heartbeat sets it again. Returns how many ran.
 */
export async function runDueTaskShardAlarms(skip: (shard: number) => boolean = () => false): Promise<number> {
  let ran = 0;
  for (let n = 0; n < taskShardCount(env); n++) {
    if (skip(n)) continue;
    const stub = taskShardStub(n);
    const at = await runInDurableObject(stub, (_instance: TaskShard, state) => state.storage.getAlarm());
    if (at === null || at > Date.now()) continue;
    try {
      if (await runDurableObjectAlarm(stub)) ran++;
    } catch {
      // Dropped; the heartbeat's nudge re-arms it.
    }
  }
  return ran;
}

/** Test setup only: the running attempt's lease expired `agoMs` ago (its consumer vanished that long ago). */
export async function leaseExpiredAgo(runId: string, agoMs: number): Promise<void> {
  await changeOwnedRun(runId, { leaseExpiresAt: Date.now() - agoMs });
}

/** Every run the task shards keep (tasks, callbacks, alerts) that `match` accepts. */
export async function taskRunsWhere(match: (run: RunRow) => boolean): Promise<RunRow[]> {
  const all = await Promise.all(
    Array.from({ length: taskShardCount(env) }, (_, n) => taskShardStub(n).listRuns(String(n), { limit: 100_000 })),
  );
  return (all.flat() as unknown as RunRow[]).filter(match);
}
