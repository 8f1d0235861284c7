import { DurableObject } from "cloudflare:workers";
import { database } from "../db/client";
import type { Env } from "../env";
import type { Priority, RetryPolicy, Target } from "../execution/target-schema";
import { hostGuard, hostOf } from "../hosts/guard-client";
import { fireRunId, newId } from "../ids";
import type { JobAlerts } from "../jobs/schema";
import { getJob, type JobRow, recordSchedule, recordScheduleQuery, recordSuccessDeadline, type ScheduleChange } from "../jobs/store";
import { log, useLogLevel } from "../log";
import { createJobRun, type RunSpec, recordSkippedFire } from "../runs/create";
import { runTimeoutSeconds } from "../runs/run-timeout";
import type { RunRow } from "../runs/store";
import { getRuns } from "../runs/store-batch";
import { isFinal, type RunStatus } from "../runs/transitions";
import { sendJobAlerts } from "./alert-runs";
import { type AlertState, applyJobEvent, type JobEvent, NO_INCIDENTS } from "./alerts";
import { alarmRetryDelayMs, planFires } from "./decide";
import { dueFires, latestDueFire } from "./due-fires";
import { firstFireOfVersion, nextFireAfter, resolvedTriggerOf, scheduleKey } from "./job-schedule";
import { checkLease, expiredLeases, leaseUntil } from "./leases";
import { promisedReport, type RecordedSchedule, scheduleChange } from "./report-promise";
import { schedulerPaused } from "./scheduler-state";

/** Bound on the fires one alarm handles without coalesce; a longer backlog continues at once in the next round. */
const MAX_FIRES_PER_ALARM = 100;
/** Without coalesce, at most this many backlog fires start per alarm. */
const MAX_RUNS_PER_ALARM = 10;
/** How many finished runs a JobObject remembers, to ignore a repeated notice of one. */
const NOTED_RUNS = 100;

interface Stored {
  job?: JobRow;
  nextFire?: number;
  /** The latest fire slot handled (run, missed or skipped): a date trigger fires once per run_at. */
  lastFire?: number;
  leases?: Record<string, number>;
  /** Leases taken for runs not yet known to be written (a round that was cut short looks at them first). */
  unconfirmed?: string[];
  alertState?: AlertState;
  /** What D1 holds of the schedule; null when unknown (a new version of the job): the next write sets every column. */
  recorded?: RecordedSchedule | null;
  /** The tombstone: jobs created at or before this instant (their `createdAt`) were deleted. */
  removed?: number;
  /** Alarms in a row that could not record their fires (D1 or a queue refused). */
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
 * One per job: its clock (the alarm) and its lock (in-flight leases for
 * max_instances). It loads what it needs, asks the pure core what to do
 * (decide.ts, due-fires.ts, leases.ts, job-schedule.ts) and stores and sends
 * what that says. Single-threaded, so decisions made between awaits on
 * in-memory state cannot interleave with another request's.
 */
export class JobObject extends DurableObject<Env> {
  private job: JobRow | undefined;
  private nextFire: number | undefined;
  private lastFire: number | undefined;
  private leases = new Map<string, number>();
  private unconfirmed = new Set<string>();
  private alertState: AlertState = NO_INCIDENTS;
  private recorded: RecordedSchedule | null = null;
  private removed: number | undefined;
  private alarmFailures = 0;
  /** The round of fires in progress: a sync's catch-up waits for an alarm's instead of racing it. */
  private firing: Promise<boolean> | undefined;
  /** Inside the alarm handler: an alarm that sets no new alarm leaves none, so it deletes nothing. */
  private inAlarm = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
    void ctx.blockConcurrencyWhile(async () => {
      const keys: (keyof Stored)[] = [
        "job",
        "nextFire",
        "lastFire",
        "leases",
        "unconfirmed",
        "alertState",
        "recorded",
        "removed",
        "alarmFailures",
      ];
      const stored = await ctx.storage.get<Stored[keyof Stored]>(keys);
      const value = <K extends keyof Stored>(key: K) => stored.get(key) as Stored[K] | undefined;
      this.alertState = value("alertState") ?? NO_INCIDENTS;
      this.recorded = value("recorded") ?? null;
      this.job = value("job");
      this.nextFire = value("nextFire");
      this.lastFire = value("lastFire");
      this.leases = new Map(Object.entries(value("leases") ?? {}));
      this.unconfirmed = new Set(value("unconfirmed") ?? []);
      this.removed = value("removed");
      this.alarmFailures = value("alarmFailures") ?? 0;
    });
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
      // D1 already holds the new version: these fires belong to the old one, so only the job's existence is checked.
      await this.fireDue(now, { anyVersion: true }).catch((error: unknown) =>
        log("warn", "catch_up_failed", { job_id: job.id, error: errorText(error) }),
      );
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
      await this.ctx.storage.setAlarm(Math.max(this.nextFire, Date.now()));
    }
    this.recorded = null;
    await this.recordSchedule(Date.now());
    return "armed";
  }

  /**
   * Deletes the job created at `createdAt` (DELETE /v1/jobs/:id), before D1 forgets it: from now
   * on this object fires nothing for it and refuses its versions. A newer job with the same id is kept.
   */
  async remove(createdAt: number): Promise<void> {
    if (this.job && this.job.createdAt > createdAt) return;
    this.removed = Math.max(createdAt, this.removed ?? createdAt);
    this.job = undefined;
    this.nextFire = undefined;
    this.lastFire = undefined;
    this.recorded = null;
    this.leases.clear();
    this.unconfirmed.clear();
    this.alertState = NO_INCIDENTS;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.put("removed", this.removed);
  }

  /** Starts a run now (POST /v1/jobs/:id/run), subject to max_instances. */
  async runNow(requestId: string | null): Promise<RunNowResult> {
    if (!this.job) return { run: null, reason: "not_found", inFlight: 0 };
    await this.settleExpiredLeases(Date.now());
    const job = this.job;
    if (!job) return { run: null, reason: "not_found", inFlight: 0 };
    if (this.leases.size >= job.maxInstances) return { run: null, reason: "max_instances", inFlight: this.leases.size };
    const now = Date.now();
    const timeout = runTimeoutSeconds(job.target as Target, job.timeout);
    const id = newId("run", now);
    // The slot is taken under the run's id, in storage, before the run exists anywhere.
    this.leases.set(id, leaseUntil(now, timeout));
    this.unconfirmed.add(id);
    await this.storeLeases();
    try {
      const written = await createJobRun(
        this.env,
        this.runSpec(job, id, now, now, requestId, null),
        { id: job.id },
        { checkSchedulerPause: false },
        now,
      );
      this.unconfirmed.delete(id);
      if (written.fire) {
        await this.storeLeases();
        return { run: written.fire.run, inFlight: this.leases.size };
      }
      await this.releaseLease(id);
      if (written.refused === "job_changed") await this.reloadJob(job);
      return { run: null, reason: "not_found", inFlight: this.leases.size };
    } catch (error) {
      this.unconfirmed.delete(id);
      await this.releaseLease(id);
      throw error;
    }
  }

  /** Frees the in-flight slot a finished run held. Idempotent. */
  async releaseLease(runId: string): Promise<void> {
    const unconfirmed = this.unconfirmed.delete(runId);
    if (this.leases.delete(runId) || unconfirmed) await this.storeLeases();
  }

  /**
   * A run of this job ended: frees its slot and feeds the job's alerts and
   * success deadline. Told twice about one run (a redelivered message whose
   * follow-up failed the first time), it only frees the slot again.
   */
  async runFinished(runId: string, status: string, finishedAt: number): Promise<void> {
    await this.releaseLease(runId);
    if (this.alertState.noted?.includes(runId)) return;
    this.alertState = { ...this.alertState, noted: [...(this.alertState.noted ?? []), runId].slice(-NOTED_RUNS) };
    await this.noteEvent({ kind: "outcome", status, at: finishedAt }, runId);
    const window = this.alertConfig()?.expect_success_within;
    if (status === "succeeded" && window !== undefined && this.job) {
      await recordSuccessDeadline(database(this.env.DB), this.job.id, finishedAt + window * 1000);
    }
  }

  /** The heartbeat found the job's success deadline passed (the dead-man's switch). Idempotent per incident. */
  async deadlineMissed(now: number): Promise<void> {
    await this.noteEvent({ kind: "deadline", at: now }, null);
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
    return {
      jobId: this.job?.id ?? null,
      version: this.job?.version ?? null,
      nextFire: this.nextFire ?? null,
      leases: [...this.leases.keys()],
      alarm: await this.ctx.storage.getAlarm(),
      removed: this.removed ?? null,
    };
  }

  override async alarm(): Promise<void> {
    if (this.job?.state !== "active" || this.nextFire === undefined) return;
    const now = Date.now();
    let handled: boolean;
    this.inAlarm = true;
    try {
      handled = await this.fireDue(now);
    } catch (error) {
      // D1 or a queue refused: the due fires stay due, and this object comes back for them with
      // a back-off of its own (the platform gives up on a throwing alarm after six retries).
      this.alarmFailures++;
      const retryAt = now + alarmRetryDelayMs(this.alarmFailures);
      log("warn", "alarm_failed", {
        job_id: this.job?.id,
        failures: this.alarmFailures,
        retry_at: new Date(retryAt).toISOString(),
        error: errorText(error),
      });
      await this.ctx.storage.put("alarmFailures", this.alarmFailures);
      await this.ctx.storage.setAlarm(retryAt);
      return;
    } finally {
      this.inAlarm = false;
    }
    if (this.alarmFailures > 0) {
      this.alarmFailures = 0;
      await this.ctx.storage.put("alarmFailures", 0);
    }
    // An alarm that found nothing due (it came early) leaves the clock where it was.
    if (!handled && this.nextFire !== undefined) await this.ctx.storage.setAlarm(Math.max(this.nextFire, now));
  }

  /** One round of due fires at a time; resolves whether there were any. */
  private async fireDue(now: number, options: { anyVersion?: boolean } = {}): Promise<boolean> {
    while (this.firing) await this.firing.catch(() => false);
    const round = this.fireDueRound(now, options.anyVersion ?? false);
    this.firing = round;
    try {
      return await round;
    } finally {
      this.firing = undefined;
    }
  }

  /** Load, decide, store, send: the due fires of the current version. */
  private async fireDueRound(now: number, anyVersion: boolean): Promise<boolean> {
    const job = this.job;
    const from = this.nextFire;
    if (job?.state !== "active" || from === undefined || from > now) return false;
    await this.settleExpiredLeases(now);
    const trigger = resolvedTriggerOf(job);
    const timeout = runTimeoutSeconds(job.target as Target, job.timeout);
    const nextAfterNow = nextFireAfter(trigger, now);
    const latest = job.coalesce ? latestDueFire(trigger, from, now) : undefined;
    const { due, next } = job.coalesce
      ? { due: latest === undefined ? [] : [latest], next: nextAfterNow }
      : dueFires(trigger, from, now, MAX_FIRES_PER_ALARM);
    // A due fire's own lease (taken by a round that was cut short) does not count against it.
    const ownIds = new Set(await Promise.all(due.map((slot) => fireRunId(job.id, slot))));
    const input = {
      due,
      following: next,
      nextAfterNow,
      now,
      misfireGraceTime: job.misfireGraceTime ?? undefined,
      coalesce: job.coalesce,
      maxInstances: job.maxInstances,
      inFlight: [...this.leases.keys()].filter((id) => !ownIds.has(id)).length,
      jitter: trigger.jitter,
      maxRunsPerAlarm: MAX_RUNS_PER_ALARM,
      random: Math.random,
    };
    let plan = planFires(input);
    // A run's insert checks the scheduler's pause itself (one D1 call per fire); only recording a
    // missed or skipped fire, which is rare, reads the flag first. Paused, nothing is recorded.
    if (plan.fires.some((f) => f.outcome !== "run") && (await schedulerPaused(database(this.env.DB)))) plan = { ...plan, fires: [] };
    const runs = await Promise.all(
      plan.fires.filter((f) => f.outcome === "run").map(async (f) => ({ ...f, id: await fireRunId(job.id, f.slot) })),
    );
    // The slots are taken under the runs' ids, in storage, before anything is written or sent.
    for (const run of runs) {
      this.leases.set(run.id, leaseUntil(Math.max(run.dueAt, now), timeout));
      this.unconfirmed.add(run.id);
    }
    if (runs.length > 0) await this.storeLeases();
    // What D1 should then hold of the schedule rides in the first run's round trip.
    let schedule = this.scheduleRecord(plan.nextFire, now);
    for (const fire of plan.fires) {
      if (fire.outcome === "run") {
        const id = await fireRunId(job.id, fire.slot);
        const companion = schedule && recordScheduleQuery(database(this.env.DB), job.id, job.version, schedule.change).toSQL();
        const spec = this.runSpec(job, id, fire.slot, fire.dueAt, null, fire.slot);
        const written = await createJobRun(
          this.env,
          spec,
          anyVersion ? { id: job.id } : { id: job.id, version: job.version },
          { checkSchedulerPause: true, companion },
          now,
        );
        if (schedule) await this.noteRecorded(job, schedule.next, written.companionMatched);
        schedule = undefined;
        this.unconfirmed.delete(id);
        if (!written.fire || isFinal(written.fire.run.status as RunStatus)) this.leases.delete(id);
        if (written.refused === "job_changed") {
          // The job was changed or deleted since this version arrived: its due fire waits for the version D1 holds.
          await this.storeLeases();
          await this.reloadJob(job);
          return true;
        }
        if (written.refused) log("debug", "fire_paused", { job_id: job.id, slot: new Date(fire.slot).toISOString() });
      } else {
        await recordSkippedFire(
          this.env,
          {
            jobId: job.id,
            jobVersion: job.version,
            slot: fire.slot,
            status: fire.outcome,
            target: job.target as Target,
            priority: job.priority as Priority,
          },
          now,
        );
        if (fire.outcome === "missed") await this.noteEvent({ kind: "outcome", status: "missed", at: now }, null);
        log("info", "fire_not_run", { job_id: job.id, slot: new Date(fire.slot).toISOString(), outcome: fire.outcome });
      }
      this.lastFire = Math.max(this.lastFire ?? fire.slot, fire.slot);
    }
    if (this.job !== job) {
      // Removed, or a new version arrived during the fires (its sync armed the clock): keep only what was done here.
      if (this.job) await this.ctx.storage.put({ ...this.leaseRecord(), lastFire: this.lastFire } satisfies Stored);
      return true;
    }
    this.nextFire = plan.nextFire;
    await this.persistAndArm(now);
    return true;
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
    this.recorded = null; // the API just wrote the row: record the whole schedule again
    this.nextFire = firstFireOfVersion(resolvedTriggerOf(job), job.state === "active", before, this.lastFire, now);
    await this.persistAndArm(now, { jobChanged: true });
  }

  /** A job's insert was refused: D1 holds another version of it, or none. Follows D1. */
  private async reloadJob(job: JobRow): Promise<void> {
    const row = await getJob(database(this.env.DB), job.id);
    if (!row || row.createdAt !== job.createdAt) {
      log("info", "job_gone", { job_id: job.id });
      if (this.job === job) await this.remove(job.createdAt);
      return;
    }
    if (row.version > job.version) await this.adopt(row, Date.now());
  }

  /** Looks at the runs whose lease expiry has come: a run that lives on keeps its slot, a final (or never written) one frees it. */
  private async settleExpiredLeases(now: number): Promise<void> {
    const expired = [...new Set([...expiredLeases(this.leases, now), ...[...this.unconfirmed].filter((id) => this.leases.has(id))])];
    this.unconfirmed.clear();
    if (expired.length === 0) return;
    const runs = new Map((await getRuns(database(this.env.DB), expired)).map((run) => [run.id, run]));
    for (const id of expired) {
      const run = runs.get(id);
      const verdict = checkLease(run, now);
      if (verdict.action === "release") this.leases.delete(id);
      else this.leases.set(id, verdict.until);
    }
    await this.storeLeases();
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
      .catch((error: unknown) => log("warn", "host_guard_introduce_failed", { host, error: errorText(error) }));
  }

  private alertConfig(): JobAlerts | undefined {
    return (this.job?.alerts ?? undefined) as JobAlerts | undefined;
  }

  private async noteEvent(event: JobEvent, runId: string | null): Promise<void> {
    const config = this.alertConfig();
    const job = this.job;
    if (!config || !job) return;
    const { state, alerts } = applyJobEvent(this.alertState, event, config);
    this.alertState = { ...state, noted: this.alertState.noted };
    await this.ctx.storage.put("alertState", state);
    await sendJobAlerts(this.env, job, config, alerts, state, event, runId);
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

  private leaseRecord() {
    return { leases: Object.fromEntries(this.leases), unconfirmed: [...this.unconfirmed] } satisfies Stored;
  }

  private async storeLeases(): Promise<void> {
    await this.ctx.storage.put(this.leaseRecord());
  }

  /**
   * The one place the alarm is set: alarm, storage and D1's promise move together. Storage gets
   * what a round of fires changes; the job itself only when a new version arrived (`jobChanged`).
   */
  private async persistAndArm(now: number, { jobChanged = false } = {}): Promise<void> {
    const job = this.job;
    if (!job) return;
    if (this.nextFire !== undefined) await this.ctx.storage.setAlarm(Math.max(this.nextFire, now));
    else if (!this.inAlarm) await this.ctx.storage.deleteAlarm();
    const changed = { nextFire: this.nextFire, lastFire: this.lastFire, ...this.leaseRecord() } satisfies Stored;
    await this.ctx.storage.put(jobChanged ? ({ ...changed, job, recorded: null } satisfies Stored) : changed);
    await this.recordSchedule(now);
  }

  /**
   * Writes to D1 only the columns of the schedule that changed: the state, and the time this
   * object promises to report in (report-promise.ts). Most alarms of a frequent job write nothing.
   */
  private async recordSchedule(now: number): Promise<void> {
    const job = this.job;
    const schedule = this.scheduleRecord(this.nextFire, now);
    if (!job || !schedule) return;
    await this.noteRecorded(job, schedule.next, await recordSchedule(database(this.env.DB), job.id, job.version, schedule.change));
  }

  /** What D1 should hold of the schedule given the next fire, and the columns that differ from what it holds; undefined if none do. */
  private scheduleRecord(nextFire: number | undefined, now: number): { next: RecordedSchedule; change: ScheduleChange } | undefined {
    if (!this.job) return undefined;
    const next: RecordedSchedule = {
      state: this.stateOf(nextFire),
      nextRunAt: promisedReport(nextFire, this.recorded?.nextRunAt ?? null, now),
    };
    const change = scheduleChange(this.recorded, next);
    return Object.keys(change).length === 0 ? undefined : { next, change };
  }

  /**
   * D1's row took `next` (`taken`), or a newer version is in D1, whose sync will record the
   * schedule again. A sync that ran during the write did so already.
   */
  private async noteRecorded(job: JobRow, next: RecordedSchedule, taken: boolean): Promise<void> {
    if (!taken || this.job !== job) return;
    this.recorded = next;
    await this.ctx.storage.put("recorded", next);
  }

  private runSpec(
    job: JobRow,
    id: string,
    scheduledFor: number,
    dueAt: number,
    requestId: string | null,
    fireSlot: number | null,
  ): RunSpec & { jobId: string } {
    return {
      id,
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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
