/**
 * Listing runs now that each owner keeps its own: a job's runs come from its
 * JobObject, the ad-hoc tasks from the task shards (one call each, merged by
 * creation time), and failed or dead runs of every owner from the failure
 * index in D1. Runs D1 kept before runs moved to their owners are all older
 * than any owner's, so each listing continues into them once the owners'
 * runs are exhausted; a cursor that starts with `run_` says it has.
 */
import { database } from "../db/client";
import type { Env } from "../env";
import { ownerOfRun, shardPrefix, timeKey } from "../ids";
import { jobObject } from "../jobs/present";
import type { LedgerFilter } from "../ledger/run-ledger";
import { taskShard } from "../tasks/shards";
import { taskShardCount } from "./create";
import { listLegacyRuns } from "./queries";
import type { Run } from "./schema";
import { toRun } from "./schema";
import type { RunRow } from "./store";

export interface RunFilter {
  status?: string | undefined;
  jobId?: string | undefined;
  /** Epoch ms: created at or after (for failures: finished). */
  since?: number | undefined;
  /** Epoch ms: created before (for failures: finished). */
  until?: number | undefined;
  cursor?: string | undefined;
  limit: number;
}

export interface RunPage {
  items: Run[];
  nextCursor: string | null;
}

const LEGACY = "run_";

/** One page of runs, newest first: a job's (job_id), every owner's failures (status failed or dead), or the tasks. */
export async function listRuns(env: Env, filter: RunFilter): Promise<RunPage> {
  if (filter.jobId !== undefined) return listJobRuns(env, filter.jobId, filter);
  if (filter.status === "failed" || filter.status === "dead") return listFailures(env, filter.status, filter);
  return listTasks(env, filter);
}

/** The ten characters of a run id that say when it was created (its fire slot, for a fire). */
function timeOf(id: string): string {
  const ref = ownerOfRun(id);
  const start = ref?.kind === "job" ? id.indexOf(":") + 1 : ref?.kind === "legacy" ? LEGACY.length : shardPrefix(0).length;
  return id.slice(start, start + 10);
}

/** Id bounds for one owner (`prefix`): the filter's times and a cursor from this owner. */
function ownerBounds(prefix: string, filter: RunFilter, before?: string): LedgerFilter {
  const until = filter.until === undefined ? undefined : `${prefix}${timeKey(filter.until)}`;
  const beforeId = before === undefined ? until : until === undefined || before < until ? before : until;
  return {
    status: filter.status,
    fromId: filter.since === undefined ? undefined : `${prefix}${timeKey(filter.since)}`,
    beforeId,
    limit: filter.limit + 1,
  };
}

/** Pages through D1's runs once the owners' are exhausted (`cursor` a D1 id, or none to start). */
async function legacyPage(
  env: Env,
  filter: RunFilter,
  extra: { jobId?: string | null; status?: string },
  have: Run[],
  cursor?: string,
): Promise<RunPage> {
  const room = filter.limit - have.length;
  if (room <= 0) return { items: have, nextCursor: have.length > 0 ? (have[have.length - 1]?.id ?? null) : null };
  const page = await listLegacyRuns(database(env.DB), {
    jobId: extra.jobId ?? undefined,
    onlyTasks: extra.jobId === null,
    status: extra.status ?? filter.status,
    since: filter.since,
    until: filter.until,
    cursor,
    limit: room,
  });
  return { items: [...have, ...page.items.map(toRun)], nextCursor: page.nextCursor };
}

async function listJobRuns(env: Env, jobId: string, filter: RunFilter): Promise<RunPage> {
  if (filter.cursor?.startsWith(LEGACY)) return legacyPage(env, filter, { jobId }, [], filter.cursor);
  const prefix = `${jobId}:`;
  const rows = (await jobObject(env, jobId).listRuns(jobId, ownerBounds(prefix, filter, filter.cursor))) as unknown as RunRow[];
  if (rows.length > filter.limit) {
    const items = rows.slice(0, filter.limit).map(toRun);
    return { items, nextCursor: items[items.length - 1]?.id ?? null };
  }
  return legacyPage(env, filter, { jobId }, rows.map(toRun));
}

/** Tasks across the shards: each shard's newest, merged by creation time (then id). */
async function listTasks(env: Env, filter: RunFilter): Promise<RunPage> {
  if (filter.cursor?.startsWith(LEGACY)) return legacyPage(env, filter, { jobId: null }, [], filter.cursor);
  const shards = taskShardCount(env);
  const cursor = filter.cursor;
  const cursorTime = cursor === undefined ? undefined : timeOf(cursor);
  const cursorShard = cursor === undefined ? undefined : ownerOfRun(cursor);
  const pages = await Promise.all(
    Array.from({ length: shards }, async (_, shard) => {
      const prefix = shardPrefix(shard);
      let before: string | undefined;
      if (cursor !== undefined && cursorTime !== undefined) {
        // Runs created in the cursor's millisecond sort by id: those of shards before the cursor's come after it.
        if (cursorShard?.kind === "shard" && cursorShard.shard === shard) before = cursor;
        else before = `${prefix}${cursorTime}${prefix < cursor ? "~" : ""}`;
      }
      return (await taskShard(env, shard).listRuns(String(shard), ownerBounds(prefix, filter, before))) as unknown as RunRow[];
    }),
  );
  const merged = pages.flat().sort((a, b) => {
    const ta = timeOf(a.id);
    const tb = timeOf(b.id);
    return ta === tb ? (a.id < b.id ? 1 : -1) : ta < tb ? 1 : -1;
  });
  if (merged.length > filter.limit) {
    const items = merged.slice(0, filter.limit).map(toRun);
    return { items, nextCursor: items[items.length - 1]?.id ?? null };
  }
  return legacyPage(env, filter, { jobId: null }, merged.map(toRun));
}

/** Failed or dead runs of every owner, from the failure index, newest finish first; then D1's own. */
async function listFailures(env: Env, status: string, filter: RunFilter): Promise<RunPage> {
  if (filter.cursor?.startsWith(LEGACY)) return legacyPage(env, filter, { status }, [], filter.cursor);
  const [finishedAt, id] = filter.cursor?.startsWith("f:") ? splitCursor(filter.cursor) : [undefined, undefined];
  const where = ["status = ?"];
  const params: (string | number)[] = [status];
  if (filter.since !== undefined) {
    where.push("finished_at >= ?");
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    where.push("finished_at < ?");
    params.push(filter.until);
  }
  if (finishedAt !== undefined && id !== undefined) {
    where.push("(finished_at < ? OR (finished_at = ? AND id < ?))");
    params.push(finishedAt, finishedAt, id);
  }
  const { results } = await env.DB.prepare(
    `SELECT id, finished_at, run FROM run_failures WHERE ${where.join(" AND ")} ORDER BY finished_at DESC, id DESC LIMIT ?`,
  )
    .bind(...params, filter.limit + 1)
    .all<{ id: string; finished_at: number; run: string }>();
  const items = results.slice(0, filter.limit).map((r) => JSON.parse(r.run) as Run);
  const last = results[Math.min(results.length, filter.limit) - 1];
  if (results.length > filter.limit && last) return { items, nextCursor: `f:${last.finished_at}:${last.id}` };
  return legacyPage(env, filter, { status }, items);
}

function splitCursor(cursor: string): [number, string] {
  const rest = cursor.slice(2);
  const colon = rest.indexOf(":");
  return [Number(rest.slice(0, colon)), rest.slice(colon + 1)];
}
