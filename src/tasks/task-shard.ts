import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { errorText } from "../errors";
import { newTaskRunId, shardPrefix } from "../ids";
import type { LedgerFilter } from "../ledger/run-ledger";
import { type ClaimItem, type FinishedRun, type FinishItem, finishedRun, RunOwner } from "../ledger/run-owner";
import { useLogLevel } from "../log";
import { followUpEndedRuns } from "../runs/ended";
import { newRunRow, type RunSpec } from "../runs/new-run";
import { retentionDays } from "../runs/retention";
import type { RunRow } from "../runs/store";

/**
 * One task's creation in a shard: created (the caller built the same row from the same spec,
 * id and time, so it does not come back), the run holding its id or idempotency key, or why it
 * failed. Callers that give no time get every run back, created or not.
 */
export type ShardInsert = { created: true } | { run: RunRow; created: boolean } | { error: string };

/**
 * One of N shards of the ad-hoc tasks (and the callback and alert runs): it
 * keeps its tasks' runs in its own SQLite storage, answers the queue
 * consumer's claims and results for them, and looks after them (lost
 * messages, vanished consumers, retention) with its own alarm. A task's id
 * names its shard; an Idempotency-Key hashes to the shard that keeps it unique.
 */
export class TaskShard extends DurableObject<Env> {
  private owner: RunOwner | undefined;
  private askedToFlushAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
  }

  /** This shard's runs; the shard learns its number from the first call that names it. */
  private runs(key: string): RunOwner {
    if (!this.owner) {
      const shard = Number(key);
      if (this.ctx.storage.kv.get<number>("shard") !== shard) this.ctx.storage.kv.put("shard", shard);
      this.owner = new RunOwner(
        this.ctx.storage,
        () => this.env,
        shardPrefix(shard),
        { finished: (runs) => followUpEndedRuns(this.env, runs) },
        // Tasks' statistics are the rollups' job_id ''; each shard adds its own.
        { statsId: "", ownerId: `shard:${shard}` },
      );
    }
    return this.owner;
  }

  /**
   * Writes new tasks' runs, created at `createdAt` (now when not given); results in `specs` order.
   * The caller sends the new runs' first messages; if it cannot, upkeep re-sends them once they
   * are overdue.
   */
  async createRuns(key: string, specs: RunSpec[], createdAt?: number): Promise<ShardInsert[]> {
    const owner = this.runs(key);
    const now = createdAt ?? Date.now();
    const rows = specs.map((spec) => {
      try {
        return newRunRow(spec, spec.id ?? newTaskRunId(Number(key), now), now);
      } catch (error) {
        return { failed: error };
      }
    });
    // A run has an `error` field of its own: a spec that could not become one is told apart by `failed`.
    const valid = rows.filter((row): row is RunRow => !("failed" in row));
    const inserted = owner.insertMany(valid);
    const byRow = new Map(valid.map((row, i) => [row, inserted[i]]));
    const results: ShardInsert[] = rows.map((row, i) => {
      const one = "failed" in row ? { error: row.failed } : byRow.get(row);
      if (!one || "error" in one) return { error: errorText(one?.error ?? "no result") };
      // A caller that gave the time and the id built this very row: it need not be copied back.
      return one.created && createdAt !== undefined && specs[i]?.id !== undefined ? { created: true } : one;
    });
    await this.armUpkeep(owner, now);
    return results;
  }

  /** Runs a failed or dead task again, as a new task in this shard. `legacy`: the run when D1 keeps it. */
  async retryRun(
    key: string,
    runId: string,
    requestId: string | null,
    legacy?: RunRow,
  ): Promise<{ run: RunRow | null; created?: boolean; reason?: string }> {
    const owner = this.runs(key);
    const now = Date.now();
    const result = owner.retry(owner.get(runId) ?? legacy, newTaskRunId(Number(key), now), requestId, now);
    await this.armUpkeep(owner, now);
    return result;
  }

  /** Adds this shard's ended runs to the statistics now (the stats API and the dashboard ask; upkeep does it in batches). */
  async flushStats(key: string, { atMostEveryMs = 0 } = {}): Promise<void> {
    const now = Date.now();
    // A page shown every few seconds asks often: a shard flushes for it at most once per interval.
    if (now - this.askedToFlushAt < atMostEveryMs) return;
    this.askedToFlushAt = now;
    await this.runs(key).stats.flushIfDue(now, undefined, true);
  }

  async getRuns(key: string, ids: string[]): Promise<(RunRow | null)[]> {
    return this.runs(key).getMany(ids);
  }

  async listRuns(key: string, filter: LedgerFilter): Promise<RunRow[]> {
    return this.runs(key).list(filter);
  }

  async claimRuns(key: string, items: ClaimItem[]): Promise<(RunRow | null)[]> {
    return this.runs(key).claimMany(items);
  }

  async finishRuns(key: string, items: FinishItem[]): Promise<(FinishedRun | null)[]> {
    const owner = this.runs(key);
    const results = await owner.finishMany(items);
    await this.armUpkeep(owner, Date.now());
    return results.map(finishedRun);
  }

  async unclaimRun(key: string, id: string, attempt: number, until: number, reason: string, now: number): Promise<RunRow | null> {
    return this.runs(key).unclaim(id, attempt, until, reason, now);
  }

  async expireRun(key: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(key).expire(id, now);
  }

  async reclaimRun(key: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(key).reclaim(id, now);
  }

  async cancelRun(key: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(key).cancel(id, now);
  }

  async followUpRuns(key: string, ids: string[]): Promise<void> {
    const owner = this.runs(key);
    await owner.followUp(owner.getMany(ids));
  }

  /** How many of this shard's runs have not finished, by status (for /metrics). */
  async pendingCounts(key: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const run of this.runs(key).pending.values()) counts[run.status] = (counts[run.status] ?? 0) + 1;
    return counts;
  }

  /** The heartbeat's nudge: makes sure the shard's upkeep alarm is set while it has pending runs. */
  async ensureArmed(key: string): Promise<void> {
    const owner = this.runs(key);
    const now = Date.now();
    // Upkeep and retention run here too, so a shard whose alarm was lost, or that went quiet,
    // still looks after its runs once a minute.
    await owner.upkeep(now);
    owner.retain(retentionDays(this.env.RUN_RETENTION_DAYS), now);
    await this.armUpkeep(owner, now);
  }

  override async alarm(): Promise<void> {
    const owner = this.owner ?? this.restoredOwner();
    if (!owner) return;
    const now = Date.now();
    const next = await owner.upkeep(now);
    owner.retain(retentionDays(this.env.RUN_RETENTION_DAYS), now);
    if (next !== undefined) await this.ctx.storage.setAlarm(next);
  }

  /** An alarm in a fresh instance: the shard number is in its runs' ids, kept in storage. */
  private restoredOwner(): RunOwner | undefined {
    const shard = this.ctx.storage.kv.get<number>("shard");
    return shard === undefined ? undefined : this.runs(String(shard));
  }

  /** Sets the upkeep alarm for the next time a pending run needs a look, unless one is set sooner. */
  private async armUpkeep(owner: RunOwner, now: number): Promise<void> {
    const next = owner.nextLookAt(now);
    if (next === undefined) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }
}
