import { DurableObject } from "cloudflare:workers";
import { database } from "../db/client";
import type { Env } from "../env";
import { errorText } from "../errors";
import { attemptInPlace } from "../execution/attempt-in-place";
import type { Priority, RetryPolicy, Target } from "../execution/target-schema";
import { hostGuard, hostOf, noteFreePass } from "../hosts/guard-client";
import { fireSlotOf, jobFireRunId, jobRunPrefix, newJobRunId } from "../ids";
import type { JobRow } from "../jobs/store";
import type { LedgerFilter } from "../ledger/run-ledger";
import { type ClaimItem, type FinishedRun, type FinishItem, finishedRun, RunOwner } from "../ledger/run-owner";
import { log, useLogLevel } from "../log";
import { claim, finish, unclaim } from "../runs/changes";
import { followUpEndedRuns } from "../runs/ended";
import { newRunRow, type RunSpec } from "../runs/new-run";
import { retentionDays } from "../runs/retention";
import { runTimeoutSeconds } from "../runs/run-timeout";
import type { RunRow } from "../runs/store";
import { getRuns } from "../runs/store-batch";
import type { AlertState } from "./alerts";
import { alarmRetryDelayMs, executionPath, type PlannedFire, planFires } from "./decide";
import { dueFires, latestDueFire } from "./due-fires";
import { JobAlertKeeper } from "./job-alerts";
import { firstFireOfVersion, nextFireAfter, resolvedTriggerOf, scheduleKey } from "./job-schedule";
import { checkLease, expiredLeases } from "./leases";
import type { RecordedSchedule } from "./report-promise";
import { ScheduleRecord } from "./schedule-record";
import { schedulerPausedRecently } from "./scheduler-state";

/** Bound on the fires one alarm handles without coalesce; a longer backlog continues at once in the next round. */
const MAX_FIRES_PER_ALARM = 100;
/** Without coalesce, at most this many backlog fires start per alarm. */
const MAX_RUNS_PER_ALARM = 10;
/** How many recent attempts decide where the next one is made. */
const RECENT_DURATIONS = 20;

interface Stored {
  job?: JobRow;
  nextFire?: number;
  /** The latest fire slot handled (run, missed or skipped): a date trigger fires once per run_at. */
  lastFire?: number;
  /** Slots held by runs kept in D1 before runs moved to their owners (`run_…` ids), until they end. */
  leases?: Record<string, number>;
  alertState?: AlertState;
  /** What D1 holds of the schedule; null when unknown (a new version of the job): the next write sets every column. */
  recorded?: RecordedSchedule | null;
  /** The tombstone: jobs created at or before this instant (their `createdAt`) were deleted. */
  removed?: number;
  /** Alarms in a row that could not do their work (a queue or D1 refused). */
  alarmFailures?: number;
}

export interface RunNowResult {
  run: RunRow | null;
  reason?: "not_found" | "max_instances";
  inFlight: number;
}

/** The job's clock after a sync; `deleted` when the version belongs to a job that was deleted. */
export interface SyncResult {
  nextRunAt: number | null;
  state: string;
}

/**
 * One per job: its clock (the alarm), its lock (max_instances) and its runs,
 * kept in its own SQLite storage (ledger/). It loads what it needs, asks the
 * pure core what to do (decide.ts, due-fires.ts, job-schedule.ts) and stores
 * and sends what that says. Single-threaded, so decisions made between awaits
 * on in-memory state cannot interleave with another request's.
 */
export class JobObject extends DurableObject<Env> {
  private job: JobRow | undefined;
  private nextFire: number | undefined;
  private lastFire: number | undefined;
  private leases = new Map<string, number>();
  private alerts = new JobAlertKeeper(this.ctx.storage, () => this.env);
  private record = new ScheduleRecord(this.ctx.storage, () => this.env);
  private removed: number | undefined;
  private alarmFailures = 0;
  private owner: RunOwner | undefined;
  /** The round of fires in progress: a sync's catch-up waits for an alarm's instead of racing it. */
  private firing: Promise<boolean> | undefined;
  /** Inside the alarm handler: an alarm that sets no new alarm leaves none, so it deletes nothing. */
  private inAlarm = false;
  /** The alarm time this instance last set (forgotten when an alarm fires: that one is spent). */
  private armedAt: number | undefined;
  /** Runs whose attempt this object is making right now (a fast target, from its alarm). */
  private readonly executing = new Map<string, RunRow>();
  /** Runs this instance sent to the queue: the consumer makes their attempts. */
  private readonly sentToQueue = new Set<string>();
  /** The durations of the job's last attempts (ms), newest last. */
  private recentDurations: number[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
    void ctx.blockConcurrencyWhile(async () => {
      const keys: (keyof Stored)[] = ["job", "nextFire", "lastFire", "leases", "alertState", "recorded", "removed", "alarmFailures"];
      const stored = await ctx.storage.get<Stored[keyof Stored]>(keys);
      const value = <K extends keyof Stored>(key: K) => stored.get(key) as Stored[K] | undefined;
      this.alerts = new JobAlertKeeper(ctx.storage, () => this.env, value("alertState"));
      this.record = new ScheduleRecord(ctx.storage, () => this.env, value("recorded") ?? null);
      this.job = value("job");
      this.nextFire = value("nextFire");
      this.lastFire = value("lastFire");
      this.leases = new Map(Object.entries(value("leases") ?? {}));
      this.removed = value("removed");
      this.alarmFailures = value("alarmFailures") ?? 0;
      this.restoreClock();
    });
  }

  /**
   * A round of fires stores no clock (that would be a row written per fire): the clock is where
   * the stored one says, or after the latest fire the ledger holds, whichever is later. The last
   * attempts' durations come from the ledger too.
   */
  private restoreClock(): void {
    const job = this.job;
    if (!job) return;
    const runs = this.runs(job.id);
    const latestId = runs.ledger.newestIdLike(`${jobRunPrefix(job.id)}%0000000000000000`);
    const latest = latestId === undefined ? undefined : fireSlotOf(latestId);
    if (latest !== undefined && (this.lastFire === undefined || latest > this.lastFire)) this.lastFire = latest;
    if (this.nextFire !== undefined && this.lastFire !== undefined && this.lastFire >= this.nextFire) {
      this.nextFire = nextFireAfter(resolvedTriggerOf(job), this.lastFire);
    }
    this.recentDurations = runs.ledger.recentDurations(RECENT_DURATIONS);
  }

  /** The job's runs (created with the job's id, which every run id starts with). */
  private runs(jobId: string): RunOwner {
    this.owner ??= new RunOwner(
      this.ctx.storage,
      () => this.env,
      jobRunPrefix(jobId),
      { finished: (runs) => this.ended(runs) },
      { statsId: jobId, ownerId: `job:${jobId}` },
    );
    return this.owner;
  }

  /** Round trip used by /readyz to prove Durable Objects answer. */
  async ping(value: number): Promise<number> {
    return value;
  }

  /**
   * Takes a new version of the job. A fire that fell due under the old version is handled
   * under it first when the change would drop it (a pause, a new schedule); older versions
   * are ignored, and a deleted job's versions are refused.
   */
  async sync(job: JobRow): Promise<SyncResult> {
    if (this.wasRemoved(job)) return { nextRunAt: null, state: "deleted" };
    const current = this.sameJob(job) ? this.job : undefined;
    if (current && current.version > job.version) return this.schedule();
    const now = Date.now();
    if (current && this.nextFire !== undefined && this.nextFire <= now && this.dropsDueFire(current, job)) {
      await this.fireDue(now).catch((error: unknown) => log("warn", "catch_up_failed", { job_id: job.id, error: errorText(error) }));
    }
    await this.adopt(job, Date.now());
    return this.schedule();
  }

  /**
   * The heartbeat found D1's promise (next_run_at) overdue or missing: re-arms a lost alarm
   * without changing the job, and renews the promise, since D1 no longer holds what this object
   * last wrote. `removed`: the job was deleted here, so the caller finishes removing it from D1.
   */
  async ensureArmed(job: JobRow): Promise<"armed" | "removed"> {
    if (this.wasRemoved(job)) return "removed";
    if (!this.job || !this.sameJob(job) || this.job.version < job.version) {
      await this.sync(job);
      return "armed";
    }
    const alarm = await this.ctx.storage.getAlarm();
    if (this.job.state === "active" && this.nextFire !== undefined && alarm === null) {
      log("warn", "alarm_rearmed", { job_id: job.id, next_fire: new Date(this.nextFire).toISOString() });
      this.armedAt = Math.max(this.nextFire, Date.now());
      await this.ctx.storage.setAlarm(this.armedAt);
    }
    this.record.forget();
    await this.recordSchedule(Date.now());
    return "armed";
  }

  /**
   * Deletes the job created at `createdAt` (DELETE /v1/jobs/:id), before D1 forgets it: from now
   * on this object fires nothing for it and refuses its versions; its runs go with it (a running
   * attempt still finishes, unrecorded). A newer job with the same id is kept.
   */
  async remove(createdAt: number): Promise<void> {
    if (this.job && this.job.createdAt > createdAt) return;
    this.removed = Math.max(createdAt, this.removed ?? createdAt);
    this.job = undefined;
    this.nextFire = undefined;
    this.lastFire = undefined;
    this.record.forget();
    this.leases.clear();
    this.owner = undefined;
    this.alerts.reset();
    this.armedAt = undefined;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.put("removed", this.removed);
  }

  /** Starts a run now (POST /v1/jobs/:id/run), subject to max_instances. */
  async runNow(requestId: string | null): Promise<RunNowResult> {
    if (!this.job) return { run: null, reason: "not_found", inFlight: 0 };
    await this.settleLegacyLeases(Date.now());
    const job = this.job;
    if (!job) return { run: null, reason: "not_found", inFlight: 0 };
    const inFlight = this.inFlight();
    if (inFlight >= job.maxInstances) return { run: null, reason: "max_instances", inFlight };
    const now = Date.now();
    // The caller sends the run's first message; should it not, upkeep re-sends it once it is overdue.
    const { run } = this.runs(job.id).insert(newRunRow(this.runSpec(job, now, now, requestId, null), newJobRunId(job.id, now), now));
    await this.armUpkeep(now);
    return { run, inFlight: inFlight + 1 };
  }

  /**
   * Runs a failed or dead run of this job again, as a new run of this job (POST /v1/runs/:id/retry).
   * `legacy`: the run when D1 keeps it (from before runs moved to their owners).
   */
  async retryRun(
    jobId: string,
    runId: string,
    requestId: string | null,
    legacy?: RunRow,
  ): Promise<{ run: RunRow | null; created?: boolean; reason?: string }> {
    const runs = this.runs(jobId);
    const now = Date.now();
    const result = runs.retry(runs.get(runId) ?? legacy, newJobRunId(jobId, now), requestId, now);
    await this.armUpkeep(now);
    return result;
  }

  /** When this job's latest run was due (GET /v1/jobs/:id shows it current; D1's copy comes with the statistics). */
  async lastRunAt(jobId: string): Promise<number | null> {
    const times = [...this.executing.values()].map((r) => r.scheduledFor);
    const newest = this.runs(jobId).ledger.newestRan();
    if (newest) times.push(newest.scheduledFor);
    return times.length > 0 ? Math.max(...times) : null;
  }

  /** Adds this job's ended runs to the statistics now (GET /v1/jobs/:id/stats asks first, so a job's stats are current). */
  async flushStats(jobId: string): Promise<void> {
    await this.runs(jobId).stats.flushIfDue(Date.now(), (ended) => lastRunStatement(jobId, ended), true);
  }

  async getRuns(jobId: string, ids: string[]): Promise<(RunRow | null)[]> {
    const stored = this.runs(jobId).getMany(ids);
    return ids.map((id, i) => this.executing.get(id) ?? stored[i] ?? null);
  }

  async listRuns(jobId: string, filter: LedgerFilter): Promise<RunRow[]> {
    const stored = this.runs(jobId).list(filter);
    // A fast target's run is stored when its attempt ends; until then it is listed from memory.
    const live = [...this.executing.values()].filter(
      (run) =>
        !stored.some((s) => s.id === run.id) &&
        (filter.status === undefined || run.status === filter.status) &&
        (filter.fromId === undefined || run.id >= filter.fromId) &&
        (filter.beforeId === undefined || run.id < filter.beforeId),
    );
    return [...live, ...stored].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, filter.limit);
  }

  async claimRuns(jobId: string, items: ClaimItem[]): Promise<(RunRow | null)[]> {
    return this.runs(jobId).claimMany(items);
  }

  async finishRuns(jobId: string, items: FinishItem[]): Promise<(FinishedRun | null)[]> {
    return (await this.runs(jobId).finishMany(items)).map(finishedRun);
  }

  async unclaimRun(jobId: string, id: string, attempt: number, until: number, reason: string, now: number): Promise<RunRow | null> {
    const waiting = this.runs(jobId).unclaim(id, attempt, until, reason, now);
    await this.armUpkeep(now);
    return waiting;
  }

  async expireRun(jobId: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(jobId).expire(id, now);
  }

  async reclaimRun(jobId: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(jobId).reclaim(id, now);
  }

  async cancelRun(jobId: string, id: string, now: number): Promise<RunRow | null> {
    return this.runs(jobId).cancel(id, now);
  }

  async followUpRuns(jobId: string, ids: string[]): Promise<void> {
    const runs = this.runs(jobId);
    await runs.followUp(runs.getMany(ids));
  }

  /**
   * A run kept in D1 (from before runs moved to their owners) ended: frees its slot and feeds
   * the job's alerts and success deadline. Told twice about one run, it only frees the slot again.
   */
  async runFinished(runId: string, status: string, finishedAt: number): Promise<void> {
    if (this.leases.delete(runId)) await this.ctx.storage.put("leases", Object.fromEntries(this.leases));
    await this.noteOutcome(runId, status, finishedAt);
  }

  /** The heartbeat found the job's success deadline passed (the dead-man's switch). Idempotent per incident. */
  async deadlineMissed(now: number): Promise<void> {
    if (this.job) await this.alerts.noteEvent(this.job, { kind: "deadline", at: now }, null);
  }

  /** State for tests and diagnostics. */
  async inspect(): Promise<{
    jobId: string | null;
    version: number | null;
    nextFire: number | null;
    leases: string[];
    alarm: number | null;
    removed: number | null;
  }> {
    const pending = this.job ? [...this.runs(this.job.id).pending.keys()] : [];
    return {
      jobId: this.job?.id ?? null,
      version: this.job?.version ?? null,
      nextFire: this.nextFire ?? null,
      leases: [...this.leases.keys(), ...pending],
      alarm: await this.ctx.storage.getAlarm(),
      removed: this.removed ?? null,
    };
  }

  override async alarm(): Promise<void> {
    const job = this.job;
    if (!job) return;
    const now = Date.now();
    this.inAlarm = true;
    this.armedAt = undefined;
    try {
      await this.fireDue(now);
      await this.attemptDueRuns(now);
      await this.runs(job.id).upkeep(now, (ended) => lastRunStatement(job.id, ended));
      this.runs(job.id).retain(retentionDays(this.env.RUN_RETENTION_DAYS), now);
    } catch (error) {
      // A queue or D1 refused: due fires stay due, and this object comes back for them with a
      // back-off of its own (the platform gives up on a throwing alarm after six retries).
      this.alarmFailures++;
      const retryAt = now + alarmRetryDelayMs(this.alarmFailures);
      log("warn", "alarm_failed", {
        job_id: job.id,
        failures: this.alarmFailures,
        retry_at: new Date(retryAt).toISOString(),
        error: errorText(error),
      });
      await this.ctx.storage.put("alarmFailures", this.alarmFailures);
      this.armedAt = retryAt;
      await this.ctx.storage.setAlarm(retryAt);
      return;
    } finally {
      this.inAlarm = false;
    }
    if (this.alarmFailures > 0) {
      this.alarmFailures = 0;
      await this.ctx.storage.put("alarmFailures", 0);
    }
    await this.arm(now);
    // A promise an earlier round could not write (D1 was down) is written now; nothing changed, nothing is written.
    await this.recordSchedule(now).catch((error: unknown) =>
      log("warn", "schedule_record_failed", { job_id: job.id, error: errorText(error) }),
    );
  }

  /** One round of due fires at a time; resolves whether there were any. */
  private async fireDue(now: number): Promise<boolean> {
    while (this.firing) await this.firing.catch(() => false);
    const round = this.fireDueRound(now);
    this.firing = round;
    try {
      return await round;
    } finally {
      this.firing = undefined;
    }
  }

  /** Load, decide, store, send: the due fires of the current version, each recorded in this object's own storage. */
  private async fireDueRound(now: number): Promise<boolean> {
    const job = this.job;
    const from = this.nextFire;
    if (job?.state !== "active" || from === undefined || from > now) return false;
    await this.settleLegacyLeases(now);
    const trigger = resolvedTriggerOf(job);
    const nextAfterNow = nextFireAfter(trigger, now);
    const latest = job.coalesce ? latestDueFire(trigger, from, now) : undefined;
    const { due, next } = job.coalesce
      ? { due: latest === undefined ? [] : [latest], next: nextAfterNow }
      : dueFires(trigger, from, now, MAX_FIRES_PER_ALARM);
    const runs = this.runs(job.id);
    // A due fire's own run (written by a round that was cut short) does not count against it.
    const own = new Set(due.map((slot) => jobFireRunId(job.id, slot)));
    const inFlight =
      this.leases.size + [...new Set([...runs.pending.keys(), ...this.executing.keys()])].filter((id) => !own.has(id)).length;
    let plan = planFires({
      due,
      following: next,
      nextAfterNow,
      now,
      misfireGraceTime: job.misfireGraceTime ?? undefined,
      coalesce: job.coalesce,
      maxInstances: job.maxInstances,
      inFlight,
      jitter: trigger.jitter,
      maxRunsPerAlarm: MAX_RUNS_PER_ALARM,
      random: Math.random,
    });
    // While the scheduler is paused nothing runs and nothing is recorded; the clock moves on.
    if (plan.fires.length > 0 && (await schedulerPausedRecently(database(this.env.DB), now))) plan = { ...plan, fires: [] };
    if (this.job !== job) return true; // removed, or a new version arrived meanwhile: its sync armed the clock
    for (const fire of plan.fires) this.lastFire = Math.max(this.lastFire ?? fire.slot, fire.slot);
    this.nextFire = plan.nextFire;
    const rows = plan.fires.map((fire) => this.fireRow(job, fire, now));
    const viaAlarm = executionPath(job.maxInstances, this.recentDurations) === "alarm";
    // Missed and skipped fires, and fires sent to the queue, are stored before anything goes out (a crash in
    // between re-runs this round, which finds the slots' runs and sends nothing twice).
    const stored = rows.filter((row) => !viaAlarm || row.status !== "queued").map((row) => runs.insert(row));
    const toQueue = stored.filter((w) => w.created && w.run.status === "queued").map((w) => w.run);
    for (const run of toQueue) this.sentToQueue.add(run.id);
    await runs.send(toQueue, now);
    if (plan.fires.length === 0) await this.storeClock();
    for (const fire of plan.fires.filter((f) => f.outcome !== "run")) {
      log("info", "fire_not_run", { job_id: job.id, slot: new Date(fire.slot).toISOString(), outcome: fire.outcome });
      if (fire.outcome === "missed") await this.alerts.noteEvent(job, { kind: "outcome", status: "missed", at: now }, null);
    }
    // A fast target is called right here; its run is stored once, when the attempt has ended. A slot that
    // already has its run (the same alarm delivered again) is not called again.
    if (viaAlarm)
      for (const row of rows.filter((r) => r.status === "queued" && !runs.get(r.id))) await this.attemptHere(row, now, { stored: false });
    // The clock is set, and D1's copy of the schedule written, after the calls: neither the alarm's
    // write nor a D1 round trip (the job finishing, a promise renewed) is on the fires' path.
    await this.arm(now);
    await this.recordSchedule(now).catch((error: unknown) =>
      log("warn", "schedule_record_failed", { job_id: job.id, error: errorText(error) }),
    );
    return true;
  }

  /**
   * Makes a run's next attempt from this alarm (a fast target): claims it, asks its host's guard,
   * calls it and records how it ended (retrying runs wait here for their next attempt). A fire's
   * new run (`stored: false`) is written once, when its attempt has ended; while it runs it is
   * visible from memory, and a crash of this object makes its alarm run the fire again.
   */
  private async attemptHere(run: RunRow, now: number, { stored }: { stored: boolean }): Promise<void> {
    const job = this.job;
    if (!job) return;
    const runs = this.runs(job.id);
    const attempt = run.attempt + 1;
    const claimed = stored ? (runs.claimMany([{ id: run.id, attempt, now }])[0] ?? undefined) : claim(run, attempt, now);
    if (!claimed) return;
    this.executing.set(claimed.id, claimed);
    try {
      const result = await attemptInPlace(this.env, claimed, now);
      if (this.job?.id !== job.id) return; // removed meanwhile: nothing of it is kept
      if (result.kind === "deferred") {
        const waiting = unclaim(claimed, attempt, result.until, result.reason, Date.now());
        if (waiting && stored) runs.unclaim(run.id, attempt, result.until, result.reason, Date.now());
        else if (waiting) runs.insert(waiting);
        return;
      }
      if (claimed.durationMs === null) this.noteDuration(result.finishedAt - (claimed.startedAt ?? now));
      if (stored) {
        await runs.finishMany([{ id: run.id, attempt, outcome: result.outcome, now: result.finishedAt }]);
        return;
      }
      const ended = finish(claimed, attempt, result.outcome, result.finishedAt);
      if (!ended) return;
      runs.insert(ended);
      await runs.followUp([ended]);
    } finally {
      this.executing.delete(claimed.id);
    }
  }

  /** Attempts of this job's waiting runs that are due and not in the queue's hands (retries and deferrals of fast targets). */
  private async attemptDueRuns(now: number): Promise<void> {
    const job = this.job;
    if (!job || executionPath(job.maxInstances, this.recentDurations) !== "alarm") return;
    const runs = this.runs(job.id);
    const due = [...runs.pending.values()].filter(
      (run) => run.status !== "running" && run.availableAt <= now && !this.sentToQueue.has(run.id),
    );
    for (const run of due) await this.attemptHere(run, now, { stored: true });
  }

  /** Keeps the last few attempts' durations: they decide where the next attempt is made. */
  private noteDuration(ms: number): void {
    this.recentDurations = [...this.recentDurations, ms].slice(-RECENT_DURATIONS);
  }

  /** A fire's run: waiting to be sent, or already final when the fire was missed or skipped. */
  private fireRow(job: JobRow, fire: PlannedFire, now: number): RunRow {
    const row = newRunRow(this.runSpec(job, fire.slot, fire.dueAt, null, fire.slot), jobFireRunId(job.id, fire.slot), now);
    if (fire.outcome === "run") return row;
    const message = fire.outcome === "missed" ? "fire was later than misfire_grace_time" : "max_instances runs were in flight";
    return { ...row, status: fire.outcome, maxAttempts: 0, finishedAt: now, availableAt: now, error: { message } };
  }

  /** Whether a change from `before` to `after` would drop a fire that is due now (so it is handled first). */
  private dropsDueFire(before: JobRow, after: JobRow): boolean {
    if (before.state !== "active") return false;
    return after.state !== "active" || scheduleKey(resolvedTriggerOf(before)) !== scheduleKey(resolvedTriggerOf(after));
  }

  /** Makes `job` the current version and sets its clock (job-schedule.ts decides the first fire). */
  private async adopt(job: JobRow, now: number): Promise<void> {
    const current = this.sameJob(job) ? this.job : undefined;
    if (current && current.version > job.version) return;
    const before = current && {
      active: current.state === "active",
      schedule: scheduleKey(resolvedTriggerOf(current)),
      nextFire: this.nextFire,
    };
    if (!current) this.lastFire = undefined; // a new job with this id starts afresh
    const previousHost = this.job && hostOf(this.job.target as Target);
    this.job = job;
    this.introduceHost(previousHost);
    this.record.forget(); // the API just wrote the row: record the whole schedule again
    this.nextFire = firstFireOfVersion(resolvedTriggerOf(job), job.state === "active", before, this.lastFire, now);
    await this.storeVersion(now);
  }

  /** What this job has in flight: its unfinished runs, and runs kept in D1 that still hold a slot. */
  private inFlight(): number {
    const pending = this.job ? this.runs(this.job.id).pending : new Map<string, RunRow>();
    return this.leases.size + pending.size + [...this.executing.keys()].filter((id) => !pending.has(id)).length;
  }

  /** Looks at the D1 runs whose lease expiry has come: a run that lives on keeps its slot, a final (or missing) one frees it. */
  private async settleLegacyLeases(now: number): Promise<void> {
    const expired = expiredLeases(this.leases, now);
    if (expired.length === 0) return;
    const found = new Map((await getRuns(database(this.env.DB), expired)).map((run) => [run.id, run]));
    for (const id of expired) {
      const verdict = checkLease(found.get(id), now);
      if (verdict.action === "release") this.leases.delete(id);
      else this.leases.set(id, verdict.until);
    }
    await this.ctx.storage.put("leases", Object.fromEntries(this.leases));
  }

  /** Runs of this job that ended: their alerts, success deadline and failure index. */
  private async ended(runs: RunRow[]): Promise<void> {
    await followUpEndedRuns(this.env, runs);
    for (const run of runs) await this.noteOutcome(run.id, run.status, run.finishedAt ?? Date.now());
  }

  /** Feeds one ended run to the job's alerts and success deadline, once. */
  private async noteOutcome(runId: string, status: string, finishedAt: number): Promise<void> {
    if (this.job) await this.alerts.noteOutcome(this.job, runId, status, finishedAt);
  }

  /** Whether `job` (by its creation) was deleted here. */
  private wasRemoved(job: JobRow): boolean {
    return this.removed !== undefined && job.createdAt <= this.removed;
  }

  /** Whether `job` is the job this object holds (the same id, created at the same time), at any version. */
  private sameJob(job: JobRow): boolean {
    return this.job !== undefined && this.job.id === job.id && this.job.createdAt === job.createdAt;
  }

  /**
   * Wakes the guard of the host a new or changed job calls, off the request's path. A host's
   * first call creates its guard, a new Durable Object, the slowest call a fire can make; this
   * way the job's first fire does not.
   */
  private introduceHost(previousHost: string | undefined): void {
    const host = this.job && hostOf(this.job.target as Target);
    if (host === undefined || host === previousHost) return;
    hostGuard(this.env, host)
      .introduce(host)
      .then((freeUntil) => noteFreePass(host, freeUntil))
      .catch((error: unknown) => log("warn", "host_guard_introduce_failed", { host, error: errorText(error) }));
  }

  private schedule(): SyncResult {
    return { nextRunAt: this.nextFire ?? null, state: this.stateOf(this.nextFire) };
  }

  /** The job's state given its next fire (none: it has finished). */
  private stateOf(nextFire: number | undefined): string {
    if (!this.job) return "finished";
    if (this.job.state === "paused") return "paused";
    return nextFire === undefined ? "finished" : "active";
  }

  /** The next time this object must wake: its next fire, or sooner when a pending run needs a look. */
  private wakeAt(now: number): number | undefined {
    const upkeep = this.job ? this.runs(this.job.id).nextLookAt(now) : undefined;
    const fire = this.job?.state === "active" ? this.nextFire : undefined;
    if (fire === undefined) return upkeep;
    return upkeep === undefined ? Math.max(fire, now) : Math.max(Math.min(fire, upkeep), now);
  }

  /** Sets the alarm to the next wake, or leaves none (an alarm handler that sets none leaves none). */
  private async arm(now: number): Promise<void> {
    const at = this.wakeAt(now);
    if (at !== undefined) await this.setAlarm(at, now);
    else if (!this.inAlarm) {
      this.armedAt = undefined;
      await this.ctx.storage.deleteAlarm();
    }
  }

  /** Sets the alarm, unless this instance already set it to that time (a setAlarm is a billed row written). */
  private async setAlarm(at: number, now: number): Promise<void> {
    if (at === this.armedAt && at > now) return;
    this.armedAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Makes sure a run sent to the queue is looked after: wakes for upkeep if nothing wakes this object sooner. */
  private async armUpkeep(now: number): Promise<void> {
    const at = this.wakeAt(now);
    if (at === undefined) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.setAlarm(at, now);
  }

  /**
   * A new version's clock: alarm, storage (the job with it) and D1's promise move together; a
   * sync waits for D1 to take the promise. A round of fires stores no clock (restoreClock).
   */
  private async storeVersion(now: number): Promise<void> {
    const job = this.job;
    if (!job) return;
    await this.arm(now);
    await this.ctx.storage.put({ nextFire: this.nextFire, lastFire: this.lastFire, job, recorded: null } satisfies Stored);
    await this.recordSchedule(now);
  }

  /** Stores the clock when a round of fires left no run to restore it from (the scheduler was paused). */
  private async storeClock(): Promise<void> {
    await this.ctx.storage.put({ nextFire: this.nextFire, lastFire: this.lastFire } satisfies Stored);
  }

  /** Writes to D1 what changed of the schedule (its state, the time this object promises to report in). */
  private async recordSchedule(now: number): Promise<void> {
    const job = this.job;
    if (job) await this.record.write(job, this.stateOf(this.nextFire), this.nextFire, now, () => this.job === job);
  }

  private runSpec(job: JobRow, scheduledFor: number, dueAt: number, requestId: string | null, fireSlot: number | null): RunSpec {
    return {
      target: job.target as Target,
      scheduledFor,
      dueAt,
      priority: job.priority as Priority,
      retry: (job.retry ?? undefined) as RetryPolicy | undefined,
      timeoutSeconds: runTimeoutSeconds(job.target as Target, job.timeout),
      requestId,
      jobId: job.id,
      jobVersion: job.version,
      fireSlot,
    };
  }
}

/** The job's last_run_at moves to its latest run's due time among `runs`, with the flush that counts them. */
function lastRunStatement(jobId: string, runs: RunRow[]): { sql: string; params: (string | number | null)[] }[] {
  const ran = runs.filter((r) => r.status !== "missed" && r.status !== "skipped").map((r) => r.scheduledFor);
  if (ran.length === 0) return [];
  return [{ sql: "UPDATE jobs SET last_run_at = max(coalesce(last_run_at, 0), ?) WHERE id = ?", params: [Math.max(...ran), jobId] }];
}
