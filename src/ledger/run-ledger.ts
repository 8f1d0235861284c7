/**
 * An owner's runs, in its own Durable Object SQLite storage: a JobObject keeps
 * its job's runs, a TaskShard its share of the tasks. Calls are synchronous,
 * so a load, a decision (runs/changes.ts) and a store happen in one step of a
 * single-threaded object: every change is conditional without a transaction.
 *
 * One row per run, keyed by its time-ordered id in a WITHOUT ROWID table, so
 * writing a run is one row written (no separate index to maintain); the
 * fields other than the few queried ones live in one JSON column. Listing is
 * the primary key's order; anything else is a scan, and reads are cheap.
 */
import { getTableColumns } from "drizzle-orm";
import { runs } from "../db/schema";
import type { RunRow } from "../runs/store";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    finished_at INTEGER,
    body TEXT NOT NULL
  ) WITHOUT ROWID`,
  // Only runs given an Idempotency-Key (or a callback's or alert's key) have a row here.
  `CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY NOT NULL, run_id TEXT NOT NULL) WITHOUT ROWID`,
];

/** What a listing asks for; ids sort by creation time, so time bounds are id bounds. */
export interface LedgerFilter {
  status?: string | undefined;
  /** Ids at or after this one (created at or after a time). */
  fromId?: string | undefined;
  /** Ids before this one (created before a time, or a cursor). */
  beforeId?: string | undefined;
  limit: number;
}

type Row = { id: string; status: string; finished_at: number | null; body: string };

/** The runs of one owner. Construct it once per object; it creates its tables if they are missing. */
export class RunLedger {
  constructor(private readonly sql: SqlStorage) {
    for (const statement of SCHEMA) sql.exec(statement);
  }

  /** One run by id. */
  get(id: string): RunRow | undefined {
    const [row] = this.sql.exec<Row>("SELECT * FROM runs WHERE id = ?", id).toArray();
    return row && decode(row);
  }

  /** The run an idempotency key belongs to, if any. */
  byKey(key: string): RunRow | undefined {
    const [row] = this.sql.exec<{ run_id: string }>("SELECT run_id FROM idempotency WHERE key = ?", key).toArray();
    return row && this.get(row.run_id);
  }

  /**
   * Writes a new run. When its id or idempotency key is taken (a replayed request, a repeated
   * fire), returns the run that holds it instead, and writes nothing.
   */
  insert(run: RunRow): { run: RunRow; created: boolean } {
    if (run.idempotencyKey !== null) {
      const holder = this.byKey(run.idempotencyKey) ?? this.get(run.id);
      if (holder) return { run: holder, created: false };
      this.sql.exec("INSERT INTO idempotency (key, run_id) VALUES (?, ?)", run.idempotencyKey, run.id);
    }
    const endedAt = run.finishedAt === null ? null : Date.now();
    // Most new ids are free: the insert itself tells when one is taken, without a read before every write.
    const { rowsWritten } = this.sql.exec(
      "INSERT INTO runs (id, status, finished_at, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
      run.id,
      run.status,
      endedAt,
      encode(run),
    );
    if (rowsWritten > 0) return { run, created: true };
    const holder = this.get(run.id);
    if (!holder) throw new Error(`run ${run.id} is taken but cannot be read`);
    return { run: holder, created: false };
  }

  /**
   * Writes new runs that have no idempotency key, in as few statements as their size allows (a
   * statement costs far more than a row). Returns the ids that were free and are now written;
   * a taken id (a replayed call) is left as it was, for the caller to read.
   */
  insertUnkeyed(runs: RunRow[]): Set<string> {
    const written = new Set<string>();
    const endedAt = Date.now();
    const rows = runs.map((run) => ({ i: run.id, s: run.status, e: run.finishedAt === null ? null : endedAt, b: encode(run) }));
    for (const slice of slices(rows)) {
      const inserted = this.sql
        .exec<{ id: string }>(
          "INSERT INTO runs (id, status, finished_at, body) SELECT value->>'i', value->>'s', value->>'e', value->>'b' FROM json_each(?) WHERE true ON CONFLICT (id) DO NOTHING RETURNING id",
          JSON.stringify(slice),
        )
        .toArray();
      for (const { id } of inserted) written.add(id);
    }
    return written;
  }

  /**
   * Stores a run's new state (from runs/changes.ts, decided on the state `get` returned). The
   * finished_at column is this owner's clock when the run ended: statistics are counted by it.
   */
  save(run: RunRow): RunRow {
    this.sql.exec(
      "UPDATE runs SET status = ?, finished_at = CASE WHEN ? IS NULL THEN NULL ELSE coalesce(finished_at, ?) END, body = ? WHERE id = ?",
      run.status,
      run.finishedAt,
      Date.now(),
      encode(run),
      run.id,
    );
    return run;
  }

  /** save for many runs (a consumer batch's claims or results), in as few statements as their size allows. */
  saveMany(runs: RunRow[]): void {
    if (runs.length <= 1) {
      for (const run of runs) this.save(run);
      return;
    }
    const now = Date.now();
    const rows = runs.map((run) => ({ i: run.id, s: run.status, f: run.finishedAt, b: encode(run) }));
    for (const slice of slices(rows)) {
      this.sql.exec(
        `UPDATE runs SET status = u.value->>'s',
          finished_at = CASE WHEN u.value->>'f' IS NULL THEN NULL ELSE coalesce(runs.finished_at, ?) END,
          body = u.value->>'b'
        FROM json_each(?) AS u WHERE runs.id = u.value->>'i'`,
        now,
        JSON.stringify(slice),
      );
    }
  }

  /** Loads a run, applies a change to it, and stores the result; undefined when there is no run or the change does not apply. */
  apply(id: string, change: (run: RunRow) => RunRow | undefined): RunRow | undefined {
    const run = this.get(id);
    const changed = run && change(run);
    return changed && this.save(changed);
  }

  /** A page of runs, newest first. */
  list(filter: LedgerFilter): RunRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.status !== undefined) {
      where.push("status = ?");
      params.push(filter.status);
    }
    if (filter.fromId !== undefined) {
      where.push("id >= ?");
      params.push(filter.fromId);
    }
    if (filter.beforeId !== undefined) {
      where.push("id < ?");
      params.push(filter.beforeId);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    return this.sql
      .exec<Row>(`SELECT * FROM runs ${clause} ORDER BY id DESC LIMIT ?`, ...params, filter.limit)
      .toArray()
      .map(decode);
  }

  /** Runs that have not finished, created at or after `fromId` (every one when undefined), oldest first. */
  unfinished(fromId?: string): RunRow[] {
    return this.sql
      .exec<Row>("SELECT * FROM runs WHERE id >= ? AND finished_at IS NULL ORDER BY id", fromId ?? "")
      .toArray()
      .map(decode);
  }

  /**
   * Runs created at or after `fromId` that ended in (fromMs, toMs] by this owner's clock (the
   * time the ledger recorded their end): what a statistics flush counts.
   */
  endedBetween(fromId: string, fromMs: number, toMs: number): RunRow[] {
    return this.sql
      .exec<Row>("SELECT * FROM runs WHERE id >= ? AND finished_at > ? AND finished_at <= ?", fromId, fromMs, toMs)
      .toArray()
      .map(decode);
  }

  /** Deletes up to `limit` finished runs created before `beforeId` (retention); returns how many. */
  deleteFinishedBefore(beforeId: string, limit: number): number {
    const doomed = this.sql
      .exec<Row>("SELECT * FROM runs WHERE id < ? AND finished_at IS NOT NULL ORDER BY id LIMIT ?", beforeId, limit)
      .toArray();
    for (const row of doomed) {
      const { id, idempotencyKey: key } = decode(row);
      if (key !== null) this.sql.exec("DELETE FROM idempotency WHERE key = ? AND run_id = ?", key, id);
      this.sql.exec("DELETE FROM runs WHERE id = ?", id);
    }
    return doomed.length;
  }

  /** The newest run id that matches a LIKE pattern (a job's latest fire: ids ending in its fire suffix). */
  newestIdLike(pattern: string): string | undefined {
    const [row] = this.sql.exec<{ id: string }>("SELECT id FROM runs WHERE id LIKE ? ORDER BY id DESC LIMIT 1", pattern).toArray();
    return row?.id;
  }

  /** The durations of the newest `limit` runs that have one, oldest first (read without decoding the runs). */
  recentDurations(limit: number): number[] {
    return this.sql
      .exec<{ ms: number }>(
        "SELECT ms FROM (SELECT id, json_extract(body, '$.durationMs') AS ms FROM runs ORDER BY id DESC LIMIT ?) WHERE ms IS NOT NULL ORDER BY id",
        limit,
      )
      .toArray()
      .map((row) => row.ms);
  }

  /** The newest run that ran (not a missed or skipped fire), by id. */
  newestRan(): RunRow | undefined {
    const [row] = this.sql.exec<Row>("SELECT * FROM runs WHERE status NOT IN ('missed', 'skipped') ORDER BY id DESC LIMIT 1").toArray();
    return row && decode(row);
  }

  /** How many runs this owner holds (for diagnostics). */
  count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM runs").one().n;
  }
}

/** A statement's rows travel as one JSON parameter: a slice stays well under SQLite's 2 MB value limit. */
const SLICE_CHARS = 256 * 1024;

/** Rows (each with its encoded body `b`) cut into slices of bounded size, in order. */
function slices<Row extends { b: string }>(rows: Row[]): Row[][] {
  const out: Row[][] = [];
  let current: Row[] = [];
  let chars = 0;
  for (const row of rows) {
    if (current.length > 0 && chars + row.b.length > SLICE_CHARS) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(row);
    chars += row.b.length + 64;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** A run with every field empty: what a stored body leaves out. */
const EMPTY_RUN = {
  ...Object.fromEntries(Object.keys(getTableColumns(runs)).map((field) => [field, null])),
  cancelRequested: false,
} as unknown as RunRow;

/**
 * The body leaves out the key columns and the run's empty top-level fields (about a third of a
 * small run). SQLite keeps at most about 1,000 bytes of a WITHOUT ROWID row in its page and
 * moves the rest to an overflow page of its own: a small run fits, in about 700 bytes instead
 * of the 4.8 KB a row just past the limit occupies.
 */
function encode(run: RunRow): string {
  const stored: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(run)) {
    if (field === "id" || field === "status" || value === EMPTY_RUN[field as keyof RunRow]) continue;
    stored[field] = value;
  }
  return JSON.stringify(stored);
}

function decode(row: Row): RunRow {
  return { ...EMPTY_RUN, ...(JSON.parse(row.body) as Partial<RunRow>), id: row.id, status: row.status as RunRow["status"] };
}
