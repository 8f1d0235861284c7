import type { Env } from "../env";

/** The TaskShard Durable Object of shard `n`. */
export function taskShard(env: Env, n: number) {
  return env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${n}`));
}
