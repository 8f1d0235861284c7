import type { Env } from "../env";
import { isTransientStorageError } from "../errors";
import { dispatchRuns } from "../execution/dispatch";
import { DEFAULT_TASK_SHARDS, newTaskRunId, shardOfKey } from "../ids";
import { log } from "../log";
import { taskShard } from "../tasks/shards";
import type { ShardInsert } from "../tasks/task-shard";
import { newRunRow, type RunSpec } from "./new-run";
import type { RunRow } from "./store";

export type { RunSpec } from "./new-run";

/** One run's creation: the run (new, or the one holding its idempotency key), or why it failed. */
export type InsertResult = { run: RunRow; created: boolean } | { error: unknown };

/** How many task shards the deployment has (TASK_SHARDS; changing it moves where new keys are kept). */
export function taskShardCount(env: Env): number {
  const n = Number(env.TASK_SHARDS);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : DEFAULT_TASK_SHARDS;
}

/**
 * Writes a new task's run in its shard, then sends its first message: the one way ad-hoc work
 * (tasks, callbacks, alerts, static schedules) enters the executor. A failed send leaves the run
 * waiting in its shard, whose upkeep re-sends it, so an accepted run is never lost.
 */
export async function createRun(env: Env, spec: RunSpec): Promise<{ run: RunRow; created: boolean }> {
  const [result] = await createRuns(env, [spec]);
  if (!result) throw new Error("createRuns returned no result");
  if ("error" in result) throw result.error;
  return result;
}

/**
 * createRun for many runs (bulk enqueue): one call per shard involved. A run with an
 * idempotency key goes to the shard that keeps the key unique; the others of one call share a
 * shard picked at random. Results are in `specs` order; a run that could not be written has
 * its error instead.
 */
export async function createRuns(env: Env, specs: RunSpec[]): Promise<InsertResult[]> {
  const shards = taskShardCount(env);
  const unkeyed = Math.floor(Math.random() * shards);
  const byShard = new Map<number, number[]>();
  specs.forEach((spec, i) => {
    const shard = spec.idempotencyKey === undefined ? unkeyed : shardOfKey(spec.idempotencyKey, shards);
    const indexes = byShard.get(shard);
    if (indexes) indexes.push(i);
    else byShard.set(shard, [i]);
  });
  const results: InsertResult[] = new Array(specs.length);
  const now = Date.now();
  await Promise.all(
    [...byShard].map(async ([shard, indexes]) => {
      // Each run's id is fixed here, so the call can be tried again: a run the first try wrote
      // (its answer lost) is found by its id, not written twice, and is still this call's own.
      const mine = indexes.map((i) => ({ ...(specs[i] as RunSpec), id: specs[i]?.id ?? newTaskRunId(shard, now) }));
      try {
        const written = await createInShard(env, shard, mine, now);
        indexes.forEach((specIndex, j) => {
          const one = written[j];
          const spec = mine[j] as RunSpec & { id: string };
          results[specIndex] = !one
            ? { error: new Error("the shard returned no result") }
            : "error" in one
              ? { error: new Error(one.error) }
              : !("run" in one)
                ? { run: newRunRow(spec, spec.id, now), created: true }
                : { run: one.run, created: one.created || one.run.id === spec.id };
        });
      } catch (error) {
        for (const i of indexes) results[i] = { error };
      }
    }),
  );
  const created = results.flatMap((r) => ("run" in r && r.created ? [r.run] : []));
  try {
    await dispatchRuns(env, created, Date.now());
  } catch (error) {
    log("error", "dispatch_failed", { run_ids: created.map((r) => r.id), error: error instanceof Error ? error.message : String(error) });
  }
  return results;
}

/**
 * Asks every task shard to add its ended tasks to the statistics before a global read
 * (GET /v1/stats, the dashboard): tasks' numbers are then at most 30 s old. Jobs add theirs on
 * their own schedule (an hour at most), or when GET /v1/jobs/:id/stats asks.
 */
export async function freshenTaskStats(env: Env): Promise<void> {
  await Promise.all(
    Array.from({ length: taskShardCount(env) }, (_, n) =>
      taskShard(env, n)
        .flushStats(String(n), { atMostEveryMs: 30_000 })
        .catch((error: unknown) =>
          log("warn", "stats_freshen_failed", { shard: n, error: error instanceof Error ? error.message : String(error) }),
        ),
    ),
  );
}

/** One shard's createRuns call, tried once more after a transient failure (a deploy resets objects in flight). */
async function createInShard(env: Env, shard: number, specs: RunSpec[], now: number): Promise<ShardInsert[]> {
  const call = async () => (await taskShard(env, shard).createRuns(String(shard), specs, now)) as unknown as ShardInsert[];
  try {
    return await call();
  } catch (error) {
    if (!isTransientStorageError(error)) throw error;
    log("warn", "task_shard_retried", { shard, error: error instanceof Error ? error.message : String(error) });
    return call();
  }
}
