const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/** Ten Crockford characters of epoch milliseconds: ids sort by this time. */
function timePart(ms: number): string {
  let time = "";
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** Sixteen Crockford characters (80 bits) from the first sixteen bytes. */
function tailOf(bytes: Uint8Array): string {
  let tail = "";
  for (const byte of bytes.subarray(0, 16)) tail += CROCKFORD[byte % 32];
  return tail;
}

/**
 * A ULID-style id: 10 characters of milliseconds then 16 random ones, so ids
 * sort by creation time and cursor pagination needs no extra index.
 */
export function newId(prefix: string, now = Date.now()): string {
  return `${prefix}_${timePart(now)}${tailOf(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/**
 * The id of a job's run for one fire slot: the slot as the time part, a hash
 * of the job id as the rest. Whoever writes that fire's run (a redelivered
 * alarm, the heartbeat) gets the same id, so the primary key allows one.
 */
export async function fireRunId(jobId: string, slot: number): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(jobId));
  return `run_${timePart(slot)}${tailOf(new Uint8Array(digest))}`;
}

/** The ten time characters of `ms`, for a prefix that makes a run id at or after that instant sort after it. */
export function timeKey(ms: number): string {
  return timePart(Math.max(0, Math.floor(ms)));
}

/** How many task shards there are unless TASK_SHARDS says otherwise. */
export const DEFAULT_TASK_SHARDS = 16;

/** The id prefix of a task shard's runs: `tsk007_`. */
export function shardPrefix(shard: number): string {
  return `tsk${String(shard).padStart(3, "0")}_`;
}

/** The id prefix of a job's runs: `nightly-report:` (job ids never contain a colon). */
export function jobRunPrefix(jobId: string): string {
  return `${jobId}:`;
}

/** A new task's id in a shard: the shard, then a ULID-style time and random part. */
export function newTaskRunId(shard: number, now = Date.now()): string {
  return `${shardPrefix(shard)}${timePart(now)}${tailOf(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** A job's run for one fire slot: one id per slot, so a slot cannot have a second run. */
export function jobFireRunId(jobId: string, slot: number): string {
  return `${jobRunPrefix(jobId)}${timePart(slot)}0000000000000000`;
}

/** A job's run that is not a fire (run-now, a retry of a run): a new time-ordered id. */
export function newJobRunId(jobId: string, now = Date.now()): string {
  return `${jobRunPrefix(jobId)}${timePart(now)}${tailOf(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** Who keeps a run: its job's JobObject, a task shard, or D1 (runs written before runs moved to their owners). */
export type RunOwnerRef = { kind: "job"; jobId: string } | { kind: "shard"; shard: number } | { kind: "legacy" };

/** Reads a run id's owner; undefined for an id no owner could have made. */
export function ownerOfRun(runId: string): RunOwnerRef | undefined {
  const colon = runId.indexOf(":");
  if (colon > 0) return { kind: "job", jobId: runId.slice(0, colon) };
  if (runId.startsWith("run_")) return { kind: "legacy" };
  const shard = /^tsk(\d{3})_/.exec(runId);
  return shard ? { kind: "shard", shard: Number(shard[1]) } : undefined;
}

/** The shard that owns an idempotency key's uniqueness (FNV-1a of the key). */
export function shardOfKey(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/** The fire slot a job's fire run id names (undefined for its other runs: run-now, retries). */
export function fireSlotOf(runId: string): number | undefined {
  const colon = runId.indexOf(":");
  if (colon < 0 || !runId.endsWith("0000000000000000")) return undefined;
  const time = runId.slice(colon + 1, colon + 11);
  let ms = 0;
  for (const ch of time) {
    const digit = CROCKFORD.indexOf(ch);
    if (digit < 0) return undefined;
    ms = ms * 32 + digit;
  }
  return ms;
}
