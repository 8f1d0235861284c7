/**
 * What every owner of runs does with them (a JobObject with its job's runs, a
 * TaskShard with its tasks): the queue consumer's claims and results, each a
 * conditional change of the owner's own ledger, the follow-up of a run that
 * ended, and the owner's own upkeep: re-sending a message that was lost,
 * reclaiming an attempt whose consumer vanished, and retention. Nothing here
 * touches D1 on the path of a run that succeeds.
 */

import type { Env } from "../env";
import { dispatchRuns } from "../execution/dispatch";
import type { HttpTarget, Priority, RetryPolicy, Target } from "../execution/target-schema";
import { timeKey } from "../ids";
import { log } from "../log";
import { cancel, claim, expire, finish, reclaim, unclaim } from "../runs/changes";
import { newRunRow } from "../runs/new-run";
import { logChange } from "../runs/run-rows";
import type { AttemptOutcome, RunRow } from "../runs/store";
import { isFinal, type RunStatus } from "../runs/transitions";
import { type LedgerFilter, RunLedger } from "./run-ledger";
import { type FlushExtra, StatsFlush } from "./stats-flush";
import { leaseHold, upkeepPlan } from "./upkeep";

/** What an owner does when one of its runs reaches a final status (alerts, callbacks, the failure index). */
export interface FinishHooks {
  finished(runs: RunRow[]): Promise<void>;
}

export interface ClaimItem {
  id: string;
  attempt: number;
  now: number;
}

export interface FinishItem {
  id: string;
  attempt: number;
  outcome: AttemptOutcome;
  now: number;
}

/**
 * What the queue consumer needs back of a recorded attempt: whether it was recorded, and enough
 * of the run to send a retrying run's next message. Not the whole run: it is copied across the
 * call, once per attempt.
 */
export type FinishedRun = Pick<RunRow, "id" | "status" | "attempt" | "priority" | "availableAt">;

export function finishedRun(run: RunRow | null): FinishedRun | null {
  return run && { id: run.id, status: run.status, attempt: run.attempt, priority: run.priority, availableAt: run.availableAt };
}

/** KV key: the oldest unfinished run's id when upkeep last looked (a wake scans from there). */
const WATERMARK_KEY = "runs:watermark";
/** The watermark moves at most this often. */
const WATERMARK_EVERY_MS = 10 * 60_000;
/** KV key: how far this owner has added its ended runs to the statistics (its copy of the D1 mark). */
const STATS_MARK_KEY = "stats:flushed_through";
/** KV key: when the oldest run not yet added to the statistics ended (absent when none waits). */
const STATS_WAITING_KEY = "stats:waiting_since";
/** KV key: until when expired leases are left alone, after this owner was down. */
const LEASE_HOLD_KEY = "runs:leases_held_until";
/** KV key: when retention last ran. */
const RETENTION_KEY = "runs:retained_at";
const DAY_MS = 86_400_000;
/** Retention deletes in slices, so an owner's upkeep stays short. */
const RETENTION_SLICE = 500;

/** One owner's runs and what it does with them. Construct once per Durable Object instance. */
export class RunOwner {
  readonly ledger: RunLedger;
  /** Runs that have not finished, by id: what max_instances counts and what upkeep looks after. */
  readonly pending = new Map<string, RunRow>();
  /** When upkeep last re-sent a run's message, so a lost message is re-sent once per window. */
  private readonly resentAt = new Map<string, number>();

  readonly stats: StatsFlush;
  /** The lease hold as stored (see leaseHold); null until read. */
  private heldUntil: number | undefined | null = null;

  constructor(
    private readonly storage: DurableObjectStorage,
    /** The owner's bindings, read at each use (tests give an object other bindings). */
    private readonly env: () => Env,
    /** The common prefix of this owner's run ids (`job-id:` or `tsk007_`). */
    readonly idPrefix: string,
    private readonly hooks: FinishHooks,
    /** Where this owner's statistics go: the rollups' job_id ('' for tasks) and the name of its flush mark. */
    statsIds: { statsId: string; ownerId: string },
  ) {
    this.ledger = new RunLedger(storage.sql);
    this.stats = new StatsFlush(
      () => env().DB,
      this.ledger,
      (ms) => this.idAt(ms),
      statsIds.statsId,
      statsIds.ownerId,
      {
        mark: () => storage.kv.get<number>(STATS_MARK_KEY),
        setMark: (ms) => storage.kv.put(STATS_MARK_KEY, ms),
        waitingSince: () => storage.kv.get<number>(STATS_WAITING_KEY),
        setWaitingSince: (ms) => (ms === undefined ? storage.kv.delete(STATS_WAITING_KEY) : storage.kv.put(STATS_WAITING_KEY, ms)),
      },
    );
    const watermark = storage.kv.get<{ id: string }>(WATERMARK_KEY)?.id ?? idPrefix;
    for (const run of this.ledger.unfinished(watermark)) this.pending.set(run.id, run);
  }

  /** The id every run of this owner created at or after `ms` sorts at or after. */
  idAt(ms: number): string {
    return `${this.idPrefix}${timeKey(ms)}`;
  }

  get(id: string): RunRow | undefined {
    return this.ledger.get(id);
  }

  getMany(ids: string[]): (RunRow | null)[] {
    return ids.map((id) => this.ledger.get(id) ?? null);
  }

  list(filter: LedgerFilter): RunRow[] {
    return this.ledger.list(filter);
  }

  /** Writes a new run (or finds the one holding its id or key) and tracks it while it is unfinished. */
  insert(run: RunRow): { run: RunRow; created: boolean } {
    const result = this.ledger.insert(run);
    if (result.created) this.inserted(run);
    return result;
  }

  /**
   * insert for many runs (a bulk enqueue): the runs without an idempotency key are written
   * together, in one statement; results in `runs` order. A run that cannot be written gets its
   * error, and the others are written all the same.
   */
  insertMany(runs: RunRow[]): ({ run: RunRow; created: boolean } | { error: unknown })[] {
    // Keyed runs, and an id given twice, go one by one: their uniqueness is decided in order.
    const seen = new Set<string>();
    const together: RunRow[] = [];
    for (const run of runs) {
      if (run.idempotencyKey !== null || seen.has(run.id)) continue;
      seen.add(run.id);
      together.push(run);
    }
    // One run alone takes the plain statement (an API call's task, a callback).
    if (together.length <= 1) return runs.map((run) => this.tryInsert(run));
    let written: Set<string>;
    try {
      written = this.ledger.insertUnkeyed(together);
    } catch (error) {
      return runs.map(() => ({ error }));
    }
    const batched = new Set(together);
    return runs.map((run) => {
      try {
        if (!batched.has(run)) return this.insert(run);
        if (written.has(run.id)) {
          this.inserted(run);
          return { run, created: true };
        }
        const holder = this.ledger.get(run.id);
        if (!holder) throw new Error(`run ${run.id} is taken but cannot be read`);
        return { run: holder, created: false };
      } catch (error) {
        return { error };
      }
    });
  }

  private tryInsert(run: RunRow): { run: RunRow; created: boolean } | { error: unknown } {
    try {
      return this.insert(run);
    } catch (error) {
      return { error };
    }
  }

  /** A run just written: logged, and tracked while it is unfinished. */
  private inserted(run: RunRow): void {
    logChange(run, "none", run.status as RunStatus);
    if (isFinal(run.status as RunStatus)) this.stats.ended(1);
    else this.pending.set(run.id, run);
  }

  /** Sends the first message of runs just written; a failed send leaves them to upkeep, which re-sends them. */
  async send(runs: RunRow[], now: number): Promise<void> {
    if (runs.length === 0) return;
    try {
      await dispatchRuns(this.env(), runs, now);
    } catch (error) {
      log("error", "dispatch_failed", { run_ids: runs.map((r) => r.id), error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Claims attempts for a consumer batch: each conditional on its own, all stored together. */
  claimMany(items: ClaimItem[]): (RunRow | null)[] {
    const changed = new Map<string, RunRow>();
    const results = items.map(({ id, attempt, now }) => this.change(id, (run) => claim(run, attempt, now), changed) ?? null);
    this.ledger.saveMany([...changed.values()]);
    return results;
  }

  /** Records how attempts ended (a consumer batch's results), stored together, then follows up the runs that ended. */
  async finishMany(items: FinishItem[]): Promise<(RunRow | null)[]> {
    const changed = new Map<string, RunRow>();
    const results = items.map(
      ({ id, attempt, outcome, now }) => this.change(id, (run) => finish(run, attempt, outcome, now), changed) ?? null,
    );
    this.ledger.saveMany([...changed.values()]);
    await this.followUp(results);
    return results;
  }

  /**
   * Writes a failed or dead run's retry: a new run (new id, so receivers see a new webhook-id),
   * written here with `id`; the caller sends its first message. While its latest retry has not finished, asking again returns that
   * retry (a double click starts one run); once it has finished, asking again starts another.
   * `reason` says why there is no run: the old run's status, or not_found.
   */
  async retry(
    old: RunRow | undefined,
    id: string,
    requestId: string | null,
    now: number,
  ): Promise<{ run: RunRow | null; reason?: string }> {
    if (!old) return { run: null, reason: "not_found" };
    if (old.status !== "failed" && old.status !== "dead") return { run: null, reason: old.status };
    const retry = {
      ...newRunRow(
        {
          target: old.target as Target,
          dueAt: now,
          priority: old.priority as Priority,
          retry: (old.retry ?? undefined) as RetryPolicy | undefined,
          timeoutSeconds: old.timeout,
          requestId,
          jobId: old.jobId,
          jobVersion: old.jobVersion,
          retryOf: old.id,
          callback: old.callback as HttpTarget | null,
          failureCallback: old.failureCallback as HttpTarget | null,
          idempotencyKey: this.nextRetryKey(old.id),
        },
        id,
        now,
      ),
    };
    return this.insert(retry);
  }

  /** The key of a run's next retry: `retry-of:<id>` for the first, `retry-of:<id>:<n>` once the earlier ones have finished. */
  private nextRetryKey(runId: string): string {
    for (let n = 1; ; n++) {
      const key = n === 1 ? `retry-of:${runId}` : `retry-of:${runId}:${n}`;
      const holder = this.ledger.byKey(key);
      if (!holder || !isFinal(holder.status as RunStatus)) return key;
    }
  }

  /** Gives a claim back without spending its attempt (the host's guard said wait). */
  unclaim(id: string, attempt: number, until: number, reason: string, now: number): RunRow | null {
    const waiting = this.change(id, (run) => unclaim(run, attempt, until, reason, now));
    if (waiting) log("info", "run_deferred", { run_id: id, attempt, until: new Date(until).toISOString(), reason });
    return waiting ?? null;
  }

  /** Ends a task that expired before its first attempt. */
  async expire(id: string, now: number): Promise<RunRow | null> {
    return this.ended(this.change(id, (run) => expire(run, now)));
  }

  /** Cancels a run that has not finished. */
  async cancel(id: string, now: number): Promise<RunRow | null> {
    return this.ended(this.change(id, (run) => cancel(run, now)));
  }

  /** Takes back an attempt whose lease expired; it retries or is dead. */
  async reclaim(id: string, now: number): Promise<RunRow | null> {
    const reclaimed = this.change(id, (run) => reclaim(run, now));
    if (reclaimed) log("warn", "lease_expired", { run_id: id, attempt: reclaimed.attempt, to: reclaimed.status });
    return this.ended(reclaimed);
  }

  /** Runs the follow-up of runs that ended (again, when an earlier try failed: it is idempotent). */
  async followUp(runs: (RunRow | null | undefined)[]): Promise<void> {
    const ended = runs.filter((r): r is RunRow => r !== null && r !== undefined && isFinal(r.status as RunStatus));
    if (ended.length > 0) await this.hooks.finished(ended);
  }

  /** When upkeep next has something to do: a pending run to look at, or statistics to flush (undefined: nothing). */
  nextLookAt(now: number): number | undefined {
    const plan = upkeepPlan([...this.pending.values()], this.resentAt, now, this.leasesHeldUntil());
    const times = [plan.nextLookAt, this.stats.deadline(now)].filter((t): t is number => t !== undefined);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  /**
   * The owner's upkeep: re-sends waiting runs whose message looks lost, reclaims attempts whose
   * consumer vanished (long after their lease, so a result still on its way lands first, and
   * longer still when this upkeep comes late because the owner was down), and
   * moves the watermark a wake scans from. Returns when it wants to look again.
   */
  async upkeep(now: number, flushExtra?: FlushExtra): Promise<number | undefined> {
    const held = leaseHold([...this.pending.values()], this.leasesHeldUntil(), now);
    if (held !== undefined && held !== this.leasesHeldUntil()) {
      this.storage.kv.put(LEASE_HOLD_KEY, held);
      this.heldUntil = held;
      log("warn", "leases_held", { owner: this.idPrefix, until: new Date(held).toISOString() });
    }
    const plan = upkeepPlan([...this.pending.values()], this.resentAt, now, held);
    try {
      await this.stats.flushIfDue(now, flushExtra);
    } catch (error) {
      // D1 is off a run's path: a flush it refused is tried again later, and the runs' care goes on.
      log("warn", "stats_flush_failed", { owner: this.idPrefix, error: error instanceof Error ? error.message : String(error) });
    }
    const reclaimed: RunRow[] = [];
    for (const id of plan.reclaim) {
      const run = await this.reclaim(id, now);
      if (run?.status === "retrying") reclaimed.push(run);
    }
    const resend = [...reclaimed, ...plan.resend.map((id) => this.pending.get(id)).filter((r): r is RunRow => r !== undefined)];
    for (const run of resend) this.resentAt.set(run.id, now);
    if (resend.length > 0) {
      log("warn", "run_requeued", { run_ids: resend.map((r) => r.id) });
      await this.send(resend, now);
    }
    this.moveWatermark(plan.oldestPending, now);
    return this.nextLookAt(now);
  }

  /** Until when expired leases are left alone after this owner was down (see leaseHold). */
  private leasesHeldUntil(): number | undefined {
    // Read once per instance: only this instance writes it, and every wake asks.
    if (this.heldUntil === null) this.heldUntil = this.storage.kv.get<number>(LEASE_HOLD_KEY);
    return this.heldUntil;
  }

  /**
   * Moves the watermark a wake scans from up to the oldest pending run (or to now when none is),
   * at most once per WATERMARK_EVERY_MS: a wake then reads a few minutes of finished runs, and
   * upkeep writes a row rarely, however often it runs.
   */
  private moveWatermark(oldestPending: string | undefined, now: number): void {
    const stored = this.storage.kv.get<{ id: string; at: number }>(WATERMARK_KEY);
    if (stored && now - stored.at < WATERMARK_EVERY_MS) return;
    const id = oldestPending ?? this.idAt(now - WATERMARK_EVERY_MS);
    if (stored && id <= stored.id) return;
    this.storage.kv.put(WATERMARK_KEY, { id, at: now });
  }

  /** Deletes this owner's finished runs created before the retention window; at most once an hour. */
  retain(days: number, now: number): number {
    const last = this.storage.kv.get<number>(RETENTION_KEY) ?? 0;
    if (now - last < 3_600_000) return 0;
    const before = this.idAt(now - days * DAY_MS);
    let deleted = 0;
    for (let slice = RETENTION_SLICE; slice === RETENTION_SLICE; ) {
      slice = this.ledger.deleteFinishedBefore(before, RETENTION_SLICE);
      deleted += slice;
    }
    this.storage.kv.put(RETENTION_KEY, now);
    return deleted;
  }

  /**
   * Applies one change to a stored run and keeps the pending set in step; logs the transition.
   * With `unsaved`, the change is left there for the caller to store with the others of its
   * call, in the same synchronous step (a later change of the same run in that call reads it).
   */
  private change(id: string, decide: (run: RunRow) => RunRow | undefined, unsaved?: Map<string, RunRow>): RunRow | undefined {
    // An unfinished run's pending entry is its stored state: every write of one passes here or
    // through insert, in the same synchronous step. Reading it spares a SELECT and a JSON parse.
    const before = unsaved?.get(id) ?? this.pending.get(id) ?? this.ledger.get(id);
    const after = before && decide(before);
    if (!before || !after) return undefined;
    if (unsaved) unsaved.set(id, after);
    else this.ledger.save(after);
    if (isFinal(after.status as RunStatus)) {
      this.pending.delete(id);
      this.resentAt.delete(id);
      this.stats.ended(1);
    } else this.pending.set(id, after);
    logChange(after, before.status, after.status as RunStatus, after.durationMs === null ? {} : { duration_ms: after.durationMs });
    return after;
  }

  private async ended(run: RunRow | undefined): Promise<RunRow | null> {
    if (run) await this.followUp([run]);
    return run ?? null;
  }
}
