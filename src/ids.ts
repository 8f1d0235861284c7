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
