/**
 * Retry timing for failed runs: exponential backoff with jitter, the
 * `Retry-After` header, and which HTTP statuses are worth retrying.
 */

/** The part of a job's retry policy that sets delays, in seconds. */
export interface BackoffPolicy {
  /** Delay before the first retry, doubled on each later one. */
  backoff: number;
  /** Upper bound on any single delay. */
  max_delay: number;
}

/**
 * Seconds to wait before retry number `attempt` (1 = first retry), with equal jitter.
 *
 * The un-jittered delay is `backoff * 2^(attempt-1)`, capped at `max_delay`.
 * Equal jitter picks uniformly from its upper half: runs that failed together
 * spread out, yet a retry never comes sooner than half the schedule (full
 * jitter could retry at once and hammer a target that just failed).
 * The result is rounded up to whole seconds, since queue delays are whole
 * seconds; it is therefore at least 1 whenever `backoff` and `max_delay` are > 0.
 */
export function retryDelaySeconds(attempt: number, policy: BackoffPolicy, random: () => number): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`retry attempt must be an integer >= 1, got ${attempt}`);
  }
  const { backoff, max_delay: maxDelay } = policy;
  if (!(backoff >= 0) || !(maxDelay >= 0) || !Number.isFinite(backoff) || !Number.isFinite(maxDelay)) {
    throw new RangeError(`backoff and max_delay must be finite and >= 0, got ${backoff} and ${maxDelay}`);
  }
  // Checked first: 0 * 2^1100 would be 0 * Infinity = NaN.
  if (backoff === 0 || maxDelay === 0) return 0;
  const ceiling = Math.min(backoff * 2 ** (attempt - 1), maxDelay);
  // Clamp the random source to [0, 1) so a faulty one cannot break the cap.
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  const jittered = ceiling / 2 + r * (ceiling / 2);
  return Math.min(Math.ceil(jittered), Math.ceil(ceiling));
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
// RFC 9110 §5.6.7: recipients must accept IMF-fixdate and the two obsolete forms.
const IMF_FIXDATE = /^[a-z]{3}, (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/i;
const RFC_850 = /^[a-z]{6,9}, (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/i;
const ASCTIME = /^[a-z]{3} ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

/** Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), never negative; undefined if absent or invalid. */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const dateMs = parseHttpDate(value, nowMs);
  if (dateMs === undefined) return undefined;
  // Rounded up so a retry never lands before the moment the server named.
  return Math.max(0, Math.ceil((dateMs - nowMs) / 1000));
}

/** True for statuses worth retrying: 408, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  // Other 4xx mean the request itself is wrong and will fail the same way again;
  // 2xx and 3xx are not failures at all.
  return status === 408 || status === 429 || (Number.isInteger(status) && status >= 500 && status <= 599);
}

/** Milliseconds since the epoch for an HTTP-date, or undefined. */
function parseHttpDate(value: string, nowMs: number): number | undefined {
  let m = IMF_FIXDATE.exec(value);
  if (m) return utc(num(m[3]), m[2], num(m[1]), num(m[4]), num(m[5]), num(m[6]));
  m = RFC_850.exec(value);
  if (m) return utc(fullYear(num(m[3]), nowMs), m[2], num(m[1]), num(m[4]), num(m[5]), num(m[6]));
  m = ASCTIME.exec(value);
  if (m) return utc(num(m[6]), m[1], num(m[2]), num(m[3]), num(m[4]), num(m[5]));
  return undefined;
}

/** A regex group of digits (asctime pads the day with a space) as a number. */
function num(group: string | undefined): number {
  return Number((group ?? "").trim());
}

/** RFC 9110: a two-digit year more than 50 years ahead means the previous century. */
function fullYear(twoDigits: number, nowMs: number): number {
  const nowYear = new Date(nowMs).getUTCFullYear();
  const year = Math.floor(nowYear / 100) * 100 + twoDigits;
  return year > nowYear + 50 ? year - 100 : year;
}

function utc(year: number, month: string | undefined, day: number, hour: number, minute: number, second: number): number | undefined {
  const monthIndex = MONTHS.indexOf((month ?? "").toLowerCase());
  // 60 is a leap second, which Date cannot represent; count it as :59.
  if (monthIndex < 0 || hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Date.UTC(year, monthIndex, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March; such a date is invalid, not early March.
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}
