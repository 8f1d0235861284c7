import { DurableObject } from "cloudflare:workers";
import { database } from "../db/client";
import type { Env } from "../env";
import type { Priority, RetryPolicy, Target } from "../execution/target-schema";
import { hostGuard, hostOf } from "../hosts/guard-client";
import type { JobAlerts } from "../jobs/schema";
import { type JobRow, recordSchedule, recordScheduleQuery, recordSuccessDeadline, type ScheduleChange } from "../jobs/store";
import { log, useLogLevel } from "../log";
import { createFireRun, createRun, recordSkippedFire } from "../runs/create";
import type { RunRow } from "../runs/store";
import { LEASE_GRACE_MS } from "../runs/store";
import { isFinal, type RunStatus } from "../runs/transitions";
import { DEFAULT_TIMEOUT_SECONDS } from "../tasks/schema";
import { sendJobAlerts } from "./alert-runs";
import { type AlertState, applyJobEvent, type JobEvent, NO_INCIDENTS } from "./alerts";
import { decideFires } from "./decide";
import { nextFireAfter, resolvedTriggerOf } from "./job-schedule";
import { promisedReport, type RecordedSchedule, scheduleChange } from "./report-promise";
import { schedulerPaused } from "./scheduler-state";
import { applyJitter, nextFireTimes } from "./triggers";

/** Bound on the fires one alarm evaluates, so a long outage cannot make an alarm run forever. */
const MAX_FIRES_PER_ALARM = 1000;
/** Without coalesce, at most this many backlog fires start per alarm. */
const MAX_RUNS_PER_ALARM = 10;
/** How many finished runs a JobObject remembers, to ignore a repeated notice of one. */
const NOTED_RUNS = 100;

interface Stored {
  job?: JobRow;
  nextFire?: number;
  leases?: Record<string, number>;
  alertState?: AlertState;
  /** What D1 holds of the schedule; null when unknown (a new version of the job): the next write sets every column. */
  recorded?: RecordedSchedule | null;
}

export interface RunNowResult {
  run: RunRow | null;
  reason?: "not_found" | "max_instances";
  inFlight: number;
}

/**
 * One per job: its clock (the alarm) and its lock (in-flight leases for
 * max_instances). Single-threaded, so decisions made between awaits on
 * in-memory state cannot interleave with another request's.
 */
export class JobObject extends DurableObject<Env> {
  private job: JobRow | undefined;
  private nextFire: number | undefined;
  private leases = new Map<string, number>();
  private alertState: AlertState = NO_INCIDENTS;
  private recorded: RecordedSchedule | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<Stored[keyof Stored]>(["job", "nextFire", "leases", "alertState", "recorded"]);
      this.alertState = (stored.get("alertState") as AlertState | undefined) ?? NO_INCIDENTS;
      this.recorded = (stored.get("recorded") as RecordedSchedule | null | undefined) ?? null;
      this.job = stored.get("job") as JobRow | undefined;
      this.nextFire = stored.get("nextFire") as number | undefined;
      this.leases = new Map(Object.entries((stored.get("leases") as Record<string, number> | undefined) ?? {}));
    });
  }

  /** Round trip used by /readyz to prove Durable Objects answer. */
  async ping(value: number): Promise<number> {
    return value;
  }

  /** Takes a new version of the job and re-arms its clock from now. Older versions are ignored. */
  async sync(job: JobRow): Promise<{ nextRunAt: number | null; state: string }> {
    if (this.job && this.job.id === job.id && this.job.version > job.version) return this.schedule();
    const previousHost = this.job && hostOf(this.job.target as Target);
    this.job = job;
    this.introduceHost(previousHost);
    this.recorded = null; // the API just wrote the row: record the whole schedule again
    const now = Date.now();
    this.nextFire = job.state === "active" ? nextFireAfter(resolvedTriggerOf(job), now - 1) : undefined;
    await this.persistAndArm(now, { jobChanged: true });
    return this.schedule();
  }

  /**
   * The heartbeat found D1's promise (next_run_at) overdue or missing: re-arms a lost alarm
   * without changing the job, and renews the promise, since D1 no longer holds what this object last wrote.
   */
  async ensureArmed(job: JobRow): Promise<void> {
    if (!this.job || this.job.version < job.version) {
      await this.sync(job);
      return;
    }
    const alarm = await this.ctx.storage.getAlarm();
    if (this.job.state === "active" && this.nextFire !== undefined && alarm === null) {
      log("warn", "alarm_rearmed", { job_id: job.id, next_fire: new Date(this.nextFire).toISOString() });
      await this.ctx.storage.setAlarm(Math.max(this.nextFire, Date.now()));
    } else if (this.job.state === "active" && this.nextFire === undefined) {
      await this.sync(job);
      return;
    }
    this.recorded = null;
    await this.recordSchedule(Date.now());
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
      .catch((error: unknown) =>
        log("warn", "host_guard_introduce_failed", { host, error: error instanceof Error ? error.message : String(error) }),
      );
  }

  /** Forgets the job: no alarm, no state (DELETE /v1/jobs/:id). */
  async remove(): Promise<void> {
    this.job = undefined;
    this.nextFire = undefined;
    this.recorded = null;
    this.leases.clear();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** Starts a run now (POST /v1/jobs/:id/run), subject to max_instances. */
  async runNow(requestId: string | null): Promise<RunNowResult> {
    const job = this.job;
    const now = Date.now();
    this.purgeExpiredLeases(now);
    if (!job) return { run: null, reason: "not_found", inFlight: 0 };
    if (this.leases.size >= job.maxInstances) return { run: null, reason: "max_instances", inFlight: this.leases.size };
    // Reserve the slot before any await, so concurrent calls cannot both pass the check.
    const placeholder = `pending:${crypto.randomUUID()}`;
    this.leases.set(placeholder, now + this.leaseMs(job));
    try {
      const { run } = await createRun(this.env, this.runSpec(job, now, now, requestId, null), now);
      this.leases.set(run.id, now + this.leaseMs(job));
      return { run, inFlight: this.leases.size };
    } finally {
      this.leases.delete(placeholder);
      await this.ctx.storage.put("leases", Object.fromEntries(this.leases));
    }
  }

  /** Frees the in-flight slot a finished run held. Idempotent. */
  async releaseLease(runId: string): Promise<void> {
    if (this.leases.delete(runId)) await this.ctx.storage.put("leases", Object.fromEntries(this.leases));
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

  /** State for tests and diagnostics. */
  async inspect(): Promise<{
    jobId: string | null;
    version: number | null;
    nextFire: number | null;
    leases: string[];
    alarm: number | null;
  }> {
    return {
      jobId: this.job?.id ?? null,
      version: this.job?.version ?? null,
      nextFire: this.nextFire ?? null,
      leases: [...this.leases.keys()],
      alarm: await this.ctx.storage.getAlarm(),
    };
  }

  override async alarm(): Promise<void> {
    const job = this.job;
    if (job?.state !== "active" || this.nextFire === undefined) return;
    const now = Date.now();
    this.purgeExpiredLeases(now);
    const trigger = resolvedTriggerOf(job);
    const due =
      this.nextFire <= now ? [this.nextFire, ...nextFireTimes(trigger, this.nextFire, MAX_FIRES_PER_ALARM).filter((f) => f <= now)] : [];
    const decide = (paused: boolean) =>
      decideFires({
        dueFires: due,
        now,
        paused,
        endDate: job.endDate ?? undefined,
        misfireGraceTime: job.misfireGraceTime ?? undefined,
        coalesce: job.coalesce,
        maxInstances: job.maxInstances,
        inFlight: this.leases.size,
        maxRunsPerAlarm: MAX_RUNS_PER_ALARM,
      });
    // A fire's insert checks the scheduler's pause itself (one D1 call per fire);
    // only recording a missed or skipped fire, which is rare, reads the flag first.
    let decisions = decide(false);
    if (decisions.some((d) => d.outcome !== "run")) decisions = decide(await schedulerPaused(database(this.env.DB)));
    // Hold the slots before any await, so a concurrent run-now sees them taken.
    for (const decision of decisions) if (decision.outcome === "run") this.leases.set(`pending:${decision.slot}`, now + this.leaseMs(job));
    // Kept aside until the fires are written: a failed alarm is retried from the same state.
    const nextFire = nextFireAfter(trigger, Math.max(now, due[due.length - 1] ?? now));
    // What D1 should then hold of the schedule rides in the first fire's round trip.
    let schedule = this.scheduleRecord(nextFire, now);
    for (const decision of decisions) {
      if (decision.outcome === "run") {
        const dueAt = applyJitter(decision.slot, job.jitter);
        const placeholder = `pending:${decision.slot}`;
        try {
          const companion = schedule && recordScheduleQuery(database(this.env.DB), job.id, job.version, schedule.change).toSQL();
          const { fire, companionMatched } = await createFireRun(
            this.env,
            { ...this.runSpec(job, decision.slot, dueAt, null, decision.slot), jobId: job.id, fireSlot: decision.slot },
            now,
            companion,
          );
          if (schedule) await this.noteRecorded(job, schedule.next, companionMatched);
          schedule = undefined;
          if (!fire) log("debug", "fire_paused", { job_id: job.id, slot: new Date(decision.slot).toISOString() });
          else if (!isFinal(fire.run.status as RunStatus)) this.leases.set(fire.run.id, dueAt + this.leaseMs(job));
        } finally {
          this.leases.delete(placeholder);
        }
      } else {
        await recordSkippedFire(
          this.env,
          {
            jobId: job.id,
            jobVersion: job.version,
            slot: decision.slot,
            status: decision.outcome,
            target: job.target as Target,
            priority: job.priority as Priority,
          },
          now,
        );
        if (decision.outcome === "missed") await this.noteEvent({ kind: "outcome", status: "missed", at: now }, null);
        log("info", "fire_not_run", { job_id: job.id, slot: new Date(decision.slot).toISOString(), outcome: decision.outcome });
      }
    }
    if (!this.job) return; // removed during the fires: nothing of it is kept
    if (this.job !== job) {
      // A new version arrived during the fires: its sync has armed the clock. Keep only the leases taken here.
      await this.ctx.storage.put("leases", Object.fromEntries(this.leases));
      return;
    }
    this.nextFire = nextFire;
    await this.persistAndArm(now, { alarmRunning: true });
  }

  private schedule(): { nextRunAt: number | null; state: string } {
    return { nextRunAt: this.nextFire ?? null, state: this.stateOf(this.nextFire) };
  }

  /** The job's state given its next fire (none: it has finished). */
  private stateOf(nextFire: number | undefined): string {
    if (!this.job) return "finished";
    if (this.job.state === "paused") return "paused";
    return nextFire === undefined ? "finished" : "active";
  }

  /**
   * The one place the alarm is set: alarm, storage and D1's promise move together. Storage gets
   * what an alarm changes; the job itself only when a new version arrived (`jobChanged`).
   */
  private async persistAndArm(now: number, { jobChanged = false, alarmRunning = false } = {}): Promise<void> {
    const job = this.job;
    if (!job) return;
    if (this.nextFire !== undefined) await this.ctx.storage.setAlarm(Math.max(this.nextFire, now));
    // An alarm handler that sets no new alarm leaves none: deleting it there is a redundant storage operation.
    else if (!alarmRunning) await this.ctx.storage.deleteAlarm();
    const changed = { nextFire: this.nextFire, leases: Object.fromEntries(this.leases) } satisfies Stored;
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

  private purgeExpiredLeases(now: number): void {
    // A lease outlives its run only if the consumer vanished; expiry keeps the job from blocking forever.
    for (const [runId, expires] of this.leases) if (expires < now) this.leases.delete(runId);
  }

  private leaseMs(job: JobRow): number {
    return (job.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000 + LEASE_GRACE_MS;
  }

  private runSpec(job: JobRow, scheduledFor: number, dueAt: number, requestId: string | null, fireSlot: number | null) {
    return {
      target: job.target as Target,
      scheduledFor,
      dueAt,
      priority: job.priority as Priority,
      retry: (job.retry ?? undefined) as RetryPolicy | undefined,
      timeoutSeconds: job.timeout ?? DEFAULT_TIMEOUT_SECONDS,
      requestId,
      jobId: job.id,
      jobVersion: job.version,
      fireSlot,
    };
  }
}
