/**
 * An owner's statistics reach D1 in batches, not per run: from time to time
 * the owner counts the runs that ended since its last flush (its own ledger
 * has them) and adds them to D1's hourly rollups (job_stats) in one D1 batch,
 * with the mark of how far it has counted (stats_flushes). The batch adds
 * only if the mark is where the owner read it, so a repeated or overlapping
 * flush adds nothing twice. A run that succeeds costs D1 nothing on its path.
 */
import { DURATION_BUCKETS_MS } from "../db/schema";
import { bucketIndex } from "../runs/stats-rollup";
import type { RunRow } from "../runs/store";
import type { RunLedger } from "./run-ledger";

const HOUR_MS = 3_600_000;
/** A run counted in a flush ended at most this long before the runs it is counted with were created. */
const LOOKBACK_MS = 86_400_000;
/** Flush an open hour early once this many runs are waiting and this long has passed: a busy owner's stats stay fresh. */
const EARLY_FLUSH_RUNS = 30;
const EARLY_FLUSH_MS = 5 * 60_000;
/** A flush D1 refused is tried again this soon, not at the hour's end: the heartbeat folds a closed hour 15 minutes after it. */
const FLUSH_RETRY_MS = 60_000;

const OUTCOMES = ["succeeded", "failed", "dead", "cancelled", "missed", "skipped", "expired"] as const;
type Outcome = (typeof OUTCOMES)[number];

/** Statements that ride in a flush's D1 batch, computed from the runs it counts (a job's last_run_at). */
export type FlushExtra = (runs: RunRow[]) => { sql: string; params: (string | number | null)[] }[];

/** One hour's additions to a job's rollup. */
export interface HourCounts {
  hour: number;
  outcomes: Record<Outcome, number>;
  durationCount: number;
  durationSumMs: number;
  /** Runs per duration bucket (DURATION_BUCKETS_MS, then +Inf). */
  buckets: number[];
  last: { runId: string; status: string; finishedAt: number } | null;
}

/** Counts ended runs into hourly additions, by the hour each finished in. Pure. */
export function countByHour(runs: RunRow[]): HourCounts[] {
  const hours = new Map<number, HourCounts>();
  for (const run of runs) {
    const finishedAt = run.finishedAt ?? run.updatedAt;
    const hour = Math.floor(finishedAt / HOUR_MS) * HOUR_MS;
    let counts = hours.get(hour);
    if (!counts) {
      counts = {
        hour,
        outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>,
        durationCount: 0,
        durationSumMs: 0,
        buckets: new Array<number>(DURATION_BUCKETS_MS.length + 1).fill(0),
        last: null,
      };
      hours.set(hour, counts);
    }
    if ((OUTCOMES as readonly string[]).includes(run.status)) counts.outcomes[run.status as Outcome]++;
    // Missed and skipped fires never ran: they have no duration.
    if (run.durationMs !== null && run.status !== "missed" && run.status !== "skipped") {
      counts.durationCount++;
      counts.durationSumMs += run.durationMs;
      counts.buckets[bucketIndex(run.durationMs)] = (counts.buckets[bucketIndex(run.durationMs)] ?? 0) + 1;
    }
    if (!counts.last || finishedAt >= counts.last.finishedAt) counts.last = { runId: run.id, status: run.status, finishedAt };
  }
  return [...hours.values()].sort((a, b) => a.hour - b.hour);
}

/**
 * Whether an owner should flush now: the hour in which its oldest waiting run ended has closed,
 * or a busy owner's runs have waited a while. `waitingSince`: when the oldest waiting run ended.
 */
export function flushDue(waitingSince: number, waiting: number, now: number): boolean {
  if (waiting === 0) return false;
  if (Math.floor(now / HOUR_MS) > Math.floor(waitingSince / HOUR_MS)) return true;
  return waiting >= EARLY_FLUSH_RUNS && now - waitingSince >= EARLY_FLUSH_MS;
}

/** Owners flush a closed hour within this long after it closes (the heartbeat folds it 15 minutes after). */
const FLUSH_SPREAD_MS = 10 * 60_000;

/**
 * When an owner with runs waiting must flush at the latest: after the current hour closes, at an
 * offset of its own within FLUSH_SPREAD_MS, so ten thousand owners do not all wake, and write to
 * D1's single writer, in the same second. An owner woken sooner by its own work flushes then.
 */
export function flushDeadline(now: number, ownerId: string): number {
  return (Math.floor(now / HOUR_MS) + 1) * HOUR_MS + spreadOf(ownerId);
}

/** A stable offset in [0, FLUSH_SPREAD_MS) from an owner's id (FNV-1a). */
function spreadOf(ownerId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < ownerId.length; i++) hash = Math.imul(hash ^ ownerId.charCodeAt(i), 0x01000193) >>> 0;
  return hash % FLUSH_SPREAD_MS;
}

/** The statements of one flush: move the mark, and add each hour's counts only if the mark moved. */
function flushStatements(
  statsId: string,
  ownerId: string,
  from: number,
  through: number,
  hours: HourCounts[],
): { sql: string; params: (string | number | null)[] }[] {
  const mark = {
    sql: `INSERT INTO stats_flushes (owner_id, flushed_through) VALUES (?, ?)
      ON CONFLICT (owner_id) DO UPDATE SET flushed_through = excluded.flushed_through WHERE stats_flushes.flushed_through = ?`,
    params: [ownerId, through, from],
  };
  const buckets = DURATION_BUCKETS_MS.map((_, i) => `b${i}`).concat(`b${DURATION_BUCKETS_MS.length}`);
  const columns = [...OUTCOMES, "duration_count", "duration_sum_ms", ...buckets];
  const adds = hours.map((h) => ({
    // changes() is the previous statement's: the mark's, or the previous hour's (always 1), so all or none add.
    sql: `INSERT INTO job_stats (job_id, hour, ${columns.map((c) => `"${c}"`).join(", ")}, last_run_id, last_status, last_finished_at)
      SELECT ?, ?, ${columns.map(() => "?").join(", ")}, ?, ?, ? WHERE changes() > 0
      ON CONFLICT (job_id, hour) DO UPDATE SET ${columns.map((c) => `"${c}" = "${c}" + excluded."${c}"`).join(", ")},
        last_run_id = CASE WHEN excluded.last_finished_at >= coalesce(last_finished_at, 0) THEN excluded.last_run_id ELSE last_run_id END,
        last_status = CASE WHEN excluded.last_finished_at >= coalesce(last_finished_at, 0) THEN excluded.last_status ELSE last_status END,
        last_finished_at = max(coalesce(last_finished_at, 0), excluded.last_finished_at)`,
    params: [
      statsId,
      h.hour,
      ...OUTCOMES.map((o) => h.outcomes[o]),
      h.durationCount,
      h.durationSumMs,
      ...h.buckets,
      h.last?.runId ?? null,
      h.last?.status ?? null,
      h.last?.finishedAt ?? null,
    ],
  }));
  return [mark, ...adds];
}

/** What an owner keeps in its own storage about its flushes, so a new instance knows without scanning its runs. */
export interface LocalFlushState {
  /** Its copy of the D1 mark. */
  mark(): number | undefined;
  setMark(ms: number): void;
  /** When the oldest run not yet flushed ended; undefined when none waits. */
  waitingSince(): number | undefined;
  setWaitingSince(ms: number | undefined): void;
}

/**
 * One owner's flushes. `statsId` is the rollups' job_id ('' for tasks), `ownerId` names the
 * owner's mark (`job:<id>`, `shard:<n>`). `extra` statements ride in the flush's batch (a job's
 * last_run_at).
 */
export class StatsFlush {
  /** The mark as this object last read or wrote it; undefined until read from D1. */
  private markedThrough: number | undefined;
  /** Runs that ended since the mark (at least: a wake counts whether any did). */
  private waiting: number;
  /** When the oldest of them ended (a wake takes its copy of the mark). */
  private waitingSince: number;
  /** When to try again after a flush D1 refused; undefined when the last one did not fail. */
  private retryAt: number | undefined;

  constructor(
    private readonly db: () => D1Database,
    private readonly ledger: RunLedger,
    private readonly idAt: (ms: number) => string,
    private readonly statsId: string,
    private readonly ownerId: string,
    /** The owner's own record of its flushes (KV): a wake knows whether runs wait without asking D1 or reading its runs. */
    private readonly local: LocalFlushState,
  ) {
    const since = local.waitingSince();
    const mark = local.mark();
    if (since !== undefined) {
      this.waiting = 1;
      this.waitingSince = since;
    } else if (mark === undefined) {
      // Never flushed and nothing recorded (runs kept before this record existed): look once.
      this.waiting = ledger.endedBetween(idAt(-LOOKBACK_MS), 0, Number.MAX_SAFE_INTEGER).length > 0 ? 1 : 0;
      this.waitingSince = Date.now();
      if (this.waiting > 0) local.setWaitingSince(this.waitingSince);
    } else {
      this.waiting = 0;
      this.waitingSince = mark;
    }
  }

  /** Notes that runs ended (their counts wait for the next flush). */
  ended(count: number): void {
    if (count <= 0) return;
    if (this.waiting === 0) {
      this.waitingSince = Date.now();
      this.local.setWaitingSince(this.waitingSince);
    }
    this.waiting += count;
  }

  /** When this owner must wake to flush, if runs are waiting: the end of the current hour, or sooner to retry a failed flush. */
  deadline(now: number): number | undefined {
    if (this.waiting === 0) return undefined;
    const closing = flushDeadline(Math.min(now, this.waitingSince), this.ownerId);
    return this.retryAt === undefined ? closing : Math.min(closing, Math.max(this.retryAt, now));
  }

  /** Flushes if runs are waiting and it is time (or `force`: now); returns whether it counted any. Throws what D1 threw, and tries again later. */
  async flushIfDue(now: number, extra: FlushExtra = () => [], force = false): Promise<boolean> {
    if (this.waiting === 0) return false;
    const retryDue = this.retryAt !== undefined && now >= this.retryAt;
    if (!force && !retryDue && !flushDue(this.waitingSince, this.waiting, now)) return false;
    try {
      const flushed = await this.flush(now, extra);
      this.retryAt = undefined;
      return flushed;
    } catch (error) {
      this.retryAt = now + FLUSH_RETRY_MS;
      throw error;
    }
  }

  private async flush(now: number, extra: FlushExtra): Promise<boolean> {
    const from = this.markedThrough ?? (await this.readMark());
    const through = now;
    const ended = this.ledger.endedBetween(this.idAt(from - LOOKBACK_MS), from, through);
    const statements = [...flushStatements(this.statsId, this.ownerId, from, through, countByHour(ended)), ...extra(ended)];
    const d1 = this.db();
    const results = await d1.batch(statements.map((s) => d1.prepare(s.sql).bind(...s.params)));
    if ((results[0]?.meta.changes ?? 0) === 0) {
      // The mark had moved (another instance flushed): read it again and count from there next time.
      this.markedThrough = undefined;
      return false;
    }
    this.markedThrough = through;
    this.local.setMark(through);
    // Runs that ended after `through` (while the batch was on its way) wait for the next flush.
    const later = this.ledger.endedBetween(this.idAt(through - LOOKBACK_MS), through, Number.MAX_SAFE_INTEGER).length;
    this.waiting = later;
    this.waitingSince = later > 0 ? Date.now() : through;
    this.local.setWaitingSince(later > 0 ? this.waitingSince : undefined);
    return ended.length > 0;
  }

  private async readMark(): Promise<number> {
    const row = await this.db()
      .prepare("SELECT flushed_through FROM stats_flushes WHERE owner_id = ?")
      .bind(this.ownerId)
      .first<{ flushed_through: number }>();
    const mark = row?.flushed_through ?? 0;
    this.markedThrough = mark;
    return mark;
  }
}
