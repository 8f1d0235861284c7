/**
 * Time-zone arithmetic over Intl (the only tz database a Worker has): wall times,
 * UTC offsets, and the two instants a repeated wall time maps to. Pure; formatters
 * are cached because constructing one per call is the expensive part.
 */

/** A wall-clock time in some zone; month is 1-12. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();
const namers = new Map<string, Intl.DateTimeFormat>();

/** True when `timeZone` is an IANA name the runtime knows (offsets like "+05:00" are refused). */
export function isKnownTimeZone(timeZone: string): boolean {
  // Intl also takes "+05:00", which is not a zone and has no DST rules; require a name.
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(timeZone)) return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
    return true;
  } catch {
    return false;
  }
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // hourCycle h23: some ICU builds print midnight as "24" with hour12: false.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock time of instant `ms` in `timeZone`. */
export function wallTime(ms: number, timeZone: string): WallTime {
  const out: WallTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatterFor(timeZone).formatToParts(new Date(ms))) {
    if (isWallField(part.type)) out[part.type] = Number(part.value);
  }
  return out;
}

/** Reads a wall time as if it were UTC (the basis for offset arithmetic). */
export function wallAsUtc(w: WallTime): number {
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  d.setUTCFullYear(w.year, w.month - 1, w.day);
  d.setUTCHours(w.hour, w.minute, w.second, 0);
  return d.getTime();
}

/** The zone's UTC offset at instant `ms`, in whole minutes (east positive). */
export function offsetMinutes(ms: number, timeZone: string): number {
  const wholeSecond = Math.floor(ms / 1000) * 1000;
  return Math.round((wallAsUtc(wallTime(ms, timeZone)) - wholeSecond) / 60_000);
}

/** Formats an offset in minutes as "+08:00" / "-04:00". */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** "YYYY-MM-DDTHH:mm:ss" for a wall time. */
export function formatWall(w: WallTime): string {
  return `${formatDate(w)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

/** "YYYY-MM-DD" for a wall time. */
export function formatDate(w: WallTime): string {
  return `${String(w.year).padStart(4, "0")}-${pad(w.month)}-${pad(w.day)}`;
}

/** "HH:mm", or "HH:mm:ss" when the seconds matter. */
export function formatClock(w: Pick<WallTime, "hour" | "minute" | "second">): string {
  const hm = `${pad(w.hour)}:${pad(w.minute)}`;
  return w.second === 0 ? hm : `${hm}:${pad(w.second)}`;
}

/** "EDT, -04:00" when the runtime has a letter abbreviation for the zone, else "-04:00". */
export function zoneLabel(ms: number, timeZone: string): string {
  const offset = formatOffset(offsetMinutes(ms, timeZone));
  // Each locale only has letters for some zones (en-US: EDT but "GMT+1" for BST; en-GB the reverse).
  for (const locale of ["en-US", "en-GB"]) {
    const key = `${locale} ${timeZone}`;
    let f = namers.get(key);
    if (!f) {
      f = new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: "short" });
      namers.set(key, f);
    }
    const name = f.formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName")?.value ?? "";
    if (/^[A-Z]{2,5}$/.test(name)) return `${name}, ${offset}`;
  }
  return offset;
}

/**
 * Every instant whose wall time in `timeZone` is `w`, earliest first: none in a
 * spring-forward gap, two in a fall-back overlap, otherwise one.
 */
export function instantsOfWall(w: WallTime, timeZone: string): number[] {
  const guess = wallAsUtc(w);
  const offsets = new Set([
    offsetMinutes(guess - DAY_MS, timeZone),
    offsetMinutes(guess, timeZone),
    offsetMinutes(guess + DAY_MS, timeZone),
  ]);
  const found = new Set<number>();
  for (const offset of offsets) {
    const candidate = guess - offset * 60_000;
    if (wallAsUtc(wallTime(candidate, timeZone)) === guess) found.add(candidate);
  }
  return [...found].sort((a, b) => a - b);
}

/** The clock fields of a parsed cron pattern (croner's CronPattern has them): 1 marks a value. */
export interface ClockPattern {
  isFixedTime: boolean;
  hour: number[];
  minute: number[];
  second: number[];
}

/**
 * Explains a fire that a spring-forward gap moved (fixed-time cron only) or whose local
 * time occurs twice after a fall-back change; undefined when DST played no part.
 */
export function dstNote(fireMs: number, timeZone: string, pattern?: ClockPattern): string | undefined {
  const at = Math.floor(fireMs / 1000) * 1000;
  const offset = offsetMinutes(at, timeZone);
  // Cheap exit for the common case: the offset is the same a day either side.
  if (offsetMinutes(at - DAY_MS, timeZone) === offset && offsetMinutes(at + DAY_MS, timeZone) === offset) return undefined;
  const w = wallTime(at, timeZone);
  const label = zoneLabel(at, timeZone);
  const before = offsetMinutes(at - 1000, timeZone);
  if (before < offset && pattern?.isFixedTime) {
    const skipped = firstTimeInGap(pattern, w, offset - before);
    if (skipped) {
      return `${formatClock(skipped)} does not exist on ${formatDate(w)} in ${timeZone} (clocks spring forward); fires at ${formatClock(w)} (${label})`;
    }
  }
  const [first, second] = instantsOfWall(w, timeZone);
  if (first === undefined || second === undefined) return undefined;
  const head = `${formatClock(w)} occurs twice on ${formatDate(w)} in ${timeZone} (clocks fall back)`;
  if (pattern?.isFixedTime && at === first) return `${head}; fires at the first occurrence only (${label})`;
  const repeated = (second - first) / 60_000;
  const period = repeated === 60 ? "hour" : `${repeated} minutes`;
  return `${head}; fires on the ${at === first ? "first" : "second"} pass of the repeated ${period} (${label})`;
}

/** The earliest wall time the pattern asks for in the gap of `gapMinutes` that ends at `end`. */
function firstTimeInGap(p: ClockPattern, end: WallTime, gapMinutes: number): Pick<WallTime, "hour" | "minute" | "second"> | undefined {
  const endMs = wallAsUtc(end);
  for (let t = endMs - gapMinutes * 60_000; t < endMs; t += 60_000) {
    const d = new Date(t);
    const hour = d.getUTCHours();
    const minute = d.getUTCMinutes();
    if (p.hour[hour] === 1 && p.minute[minute] === 1) return { hour, minute, second: Math.max(0, p.second.indexOf(1)) };
  }
  return undefined;
}

function isWallField(type: string): type is keyof WallTime {
  return type === "year" || type === "month" || type === "day" || type === "hour" || type === "minute" || type === "second";
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
