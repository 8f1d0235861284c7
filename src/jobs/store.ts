import { and, asc, eq, getTableColumns, gt, isNotNull, like, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { jobs } from "../db/schema";
import { forgetJobStatsQueries } from "../observe/job-totals";
import { logChange } from "../runs/run-rows";
import { cancelPendingRunsQuery } from "../runs/store";
import type { JobDefinition } from "./schema";

export type JobRow = typeof jobs.$inferSelect;
/** A job as the API shows it: its row and when its latest run was due. */
export type JobView = JobRow & { lastRunAt: number | null };

/**
 * The latest run's due time, read from the runs (a short walk down runs_job_scheduled_idx)
 * rather than written on every fire. Missed and skipped fires did not run.
 */
const jobView = {
  ...getTableColumns(jobs),
  // The JobObject reports last_run_at with its statistics; a job whose runs D1 kept (from before runs
  // moved to their owners) falls back to them. "jobs"."id" spelled out: Drizzle writes a column in a
  // selection unqualified, which here would mean r.id.
  lastRunAt: sql<
    number | null
  >`coalesce("jobs"."last_run_at", (SELECT r.scheduled_for FROM runs r WHERE r.job_id = "jobs"."id" AND r.status NOT IN ('missed', 'skipped') ORDER BY r.scheduled_for DESC LIMIT 1))`,
};

const toMs = (iso: string | undefined) => (iso === undefined ? null : Date.parse(iso));

/** The columns a definition sets (everything but identity, schedule state and timestamps). */
export function definitionColumns(def: JobDefinition, id: string) {
  return {
    name: def.name ?? id,
    trigger: def.trigger,
    target: def.target,
    timezone: def.timezone ?? "UTC",
    startDate: toMs(def.start_date),
    endDate: toMs(def.end_date),
    jitter: def.jitter ?? 0,
    maxInstances: def.max_instances,
    coalesce: def.coalesce,
    misfireGraceTime: def.misfire_grace_time,
    retry: def.retry ?? null,
    timeout: def.timeout ?? null,
    priority: def.priority,
    state: def.paused ? "paused" : "active",
    tags: def.tags ?? null,
    metadata: def.metadata ?? null,
    alerts: def.alerts ?? null,
  };
}

/** A new job's first success deadline (expect_success_within from now); null without one. */
function firstDeadline(def: JobDefinition, now: number): number | null {
  const window = def.alerts?.expect_success_within;
  return window === undefined ? null : now + window * 1000;
}

/** The success deadline of a changed job: an existing deadline is kept; without one, no missed deadline either. */
function deadlineColumn(def: JobDefinition, now: number) {
  const first = firstDeadline(def, now);
  return first === null
    ? { successDeadlineAt: null, deadlineMissedAt: null }
    : { successDeadlineAt: sql`coalesce(${jobs.successDeadlineAt}, ${first})` };
}

/** A changed job's anchor: kept while its trigger stays the same, the change's time when the trigger changes. */
function anchorColumn(def: JobDefinition, now: number) {
  return {
    anchoredAt: sql`CASE WHEN ${jobs.trigger} = ${JSON.stringify(def.trigger)} THEN coalesce(${jobs.anchoredAt}, ${jobs.createdAt}) ELSE ${now} END`,
  };
}

/** Reads a stored job back as the definition it was created from. */
export function definitionOf(row: JobRow): JobDefinition {
  const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());
  return {
    name: row.name,
    trigger: row.trigger as JobDefinition["trigger"],
    target: row.target as JobDefinition["target"],
    timezone: row.timezone,
    start_date: iso(row.startDate),
    end_date: iso(row.endDate),
    jitter: row.jitter,
    max_instances: row.maxInstances,
    coalesce: row.coalesce,
    misfire_grace_time: row.misfireGraceTime,
    retry: (row.retry ?? undefined) as JobDefinition["retry"],
    timeout: row.timeout ?? undefined,
    priority: row.priority as JobDefinition["priority"],
    paused: row.state === "paused",
    tags: (row.tags ?? undefined) as string[] | undefined,
    metadata: (row.metadata ?? undefined) as Record<string, unknown> | undefined,
    alerts: (row.alerts ?? undefined) as JobDefinition["alerts"],
  };
}

/** Inserts a new job; undefined when the id is taken (409). */
export async function insertJob(db: Db, id: string, def: JobDefinition, now: number): Promise<JobView | undefined> {
  const [row] = await db
    .insert(jobs)
    .values({
      id,
      ...definitionColumns(def, id),
      successDeadlineAt: firstDeadline(def, now),
      version: 1,
      anchoredAt: now,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing()
    .returning(jobView);
  return row;
}

/** Creates or replaces a job (PUT); a replacement bumps the version. */
export async function upsertJob(db: Db, id: string, def: JobDefinition, now: number): Promise<{ row: JobView; created: boolean }> {
  const columns = definitionColumns(def, id);
  const [row] = await db
    .insert(jobs)
    .values({ id, ...columns, successDeadlineAt: firstDeadline(def, now), version: 1, anchoredAt: now, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({
      target: jobs.id,
      set: {
        ...columns,
        ...deadlineColumn(def, now),
        ...anchorColumn(def, now),
        nextRunAt: null,
        version: sql`${jobs.version} + 1`,
        updatedAt: now,
      },
    })
    .returning(jobView);
  if (!row) throw new Error("upsert returned no row");
  return { row, created: row.version === 1 };
}

/**
 * Applies a change to the job as it was at `version` (the version the change was computed
 * from), bumping it. Undefined when the job is gone or another write landed since that read.
 */
export async function updateJob(db: Db, id: string, def: JobDefinition, now: number, version: number): Promise<JobView | undefined> {
  const [row] = await db
    .update(jobs)
    .set({
      ...definitionColumns(def, id),
      ...deadlineColumn(def, now),
      ...anchorColumn(def, now),
      version: sql`${jobs.version} + 1`,
      updatedAt: now,
    })
    .where(and(eq(jobs.id, id), eq(jobs.version, version)))
    .returning(jobView);
  return row;
}

/** Loads one job. */
export async function getJob(db: Db, id: string): Promise<JobView | undefined> {
  return db.select(jobView).from(jobs).where(eq(jobs.id, id)).get();
}

/**
 * Deletes the job created at `createdAt` (not a newer one with its id), cancels its waiting runs
 * and forgets its statistics, in one D1 batch (one transaction). Repeating it changes nothing.
 */
export async function deleteJobAndPendingRuns(db: Db, job: Pick<JobRow, "id" | "createdAt">, now: number): Promise<void> {
  const remove = db
    .delete(jobs)
    .where(and(eq(jobs.id, job.id), eq(jobs.createdAt, job.createdAt)))
    .toSQL();
  const cancel = cancelPendingRunsQuery(db, job.id, now).toSQL();
  const d1 = db.$client;
  const statements = [remove, cancel, ...forgetJobStatsQueries(db, job.id)];
  const [, cancelled] = await d1.batch<{ id: string }>(statements.map((q) => d1.prepare(q.sql).bind(...q.params)));
  for (const run of cancelled?.results ?? [])
    logChange({ id: run.id, jobId: job.id, requestId: null, attempt: 0 }, "waiting", "cancelled", { reason: "job deleted" });
}

/** One page of jobs in id order. */
export async function listJobs(
  db: Db,
  filter: { state?: string | undefined; tag?: string | undefined; cursor?: string | undefined; limit: number },
): Promise<{ items: JobView[]; nextCursor: string | null }> {
  const conditions: SQL[] = [];
  if (filter.state) conditions.push(eq(jobs.state, filter.state));
  if (filter.tag) conditions.push(like(jobs.tags, `%${JSON.stringify(filter.tag).replace(/[%_]/g, "")}%`));
  if (filter.cursor) conditions.push(gt(jobs.id, filter.cursor));
  const rows = await db
    .select(jobView)
    .from(jobs)
    .where(and(...conditions))
    .orderBy(asc(jobs.id))
    .limit(filter.limit + 1)
    .all();
  const items = rows.slice(0, filter.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > filter.limit && last ? last.id : null };
}

/** Moves a job's success deadline (expect_success_within) after a success, which ends a missed-deadline incident. */
export async function recordSuccessDeadline(db: Db, id: string, deadline: number): Promise<void> {
  await db.update(jobs).set({ successDeadlineAt: deadline, deadlineMissedAt: null }).where(eq(jobs.id, id));
}

// The unary + keeps SQLite from scanning every active job on the (state, next_run_at) index.
const isActive = sql`+${jobs.state} = 'active'`;

function deadlinesPassedQuery(db: Db, now: number, limit: number) {
  return db
    .select()
    .from(jobs)
    .where(and(lt(jobs.successDeadlineAt, now), isActive))
    .orderBy(asc(jobs.successDeadlineAt))
    .limit(limit);
}

/**
 * Active jobs whose success deadline has passed, earliest first: the heartbeat's dead-man's
 * switch, on a partial index. Once told, a job's deadline moves on (deferSuccessDeadlines),
 * so the next tick reads the jobs after it.
 */
export async function deadlinesPassed(db: Db, now: number, limit: number): Promise<JobRow[]> {
  return deadlinesPassedQuery(db, now, limit).all();
}

/** A job told that its success deadline passed: the deadline it missed, and when to look again. */
export interface DeadlineTold {
  id: string;
  missed: number;
  next: number;
}

/**
 * Moves told jobs' deadlines on (the alert state makes one alert per incident) and keeps the
 * one missed, in one round trip. A job whose deadline a success moved meanwhile is left alone.
 */
export async function deferSuccessDeadlines(db: Db, told: DeadlineTold[]): Promise<void> {
  const updates = told.map((t) =>
    db
      .update(jobs)
      .set({ successDeadlineAt: t.next, deadlineMissedAt: sql`coalesce(${jobs.deadlineMissedAt}, ${t.missed})` })
      .where(and(eq(jobs.id, t.id), eq(jobs.successDeadlineAt, t.missed))),
  );
  const [first, ...rest] = updates;
  if (first) await db.batch([first, ...rest]);
}

/** Active jobs past their success deadline, told already or not (for /readyz); each from a partial index. */
export async function overdueJobs(db: Db, now: number, limit: number): Promise<JobRow[]> {
  const [missed, passed] = await db.batch([
    db
      .select()
      .from(jobs)
      .where(and(isNotNull(jobs.deadlineMissedAt), isActive))
      .orderBy(asc(jobs.deadlineMissedAt))
      .limit(limit),
    deadlinesPassedQuery(db, now, limit),
  ]);
  return [...missed, ...passed.filter((job) => job.deadlineMissedAt === null)].slice(0, limit);
}

/**
 * Records what changed of the JobObject's schedule (its state, its promised report-in time),
 * unless a newer version of the job was written meanwhile. Returns whether the row took it.
 */
export async function recordSchedule(db: Db, id: string, version: number, change: ScheduleChange): Promise<boolean> {
  const updated = await recordScheduleQuery(db, id, version, change);
  return updated.length > 0;
}

export type ScheduleChange = { nextRunAt?: number | null; state?: string };

/** recordSchedule's statement, to ride in another round trip (a fire's insert): it returns a row if the row took it. */
export function recordScheduleQuery(db: Db, id: string, version: number, change: ScheduleChange) {
  return db
    .update(jobs)
    .set(change)
    .where(and(eq(jobs.id, id), eq(jobs.version, version)))
    .returning({ id: jobs.id });
}
