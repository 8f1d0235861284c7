/**
 * Trigger maths: when does a trigger fire next. Pure functions over epoch milliseconds;
 * croner does the cron calendar and the DST policy, this module adds bounds, intervals,
 * dates, jitter and the preview's local-time view.
 */
import { Cron, type CronOptions, CronPattern } from "croner";
import { dstNote, formatOffset, formatWall, offsetMinutes, wallTime } from "./dst";
import type { FireTime, Trigger, TriggerPreview } from "./trigger-schema";

// OR of day-of-month and day-of-week (standard cron). "no-wildcard" is Vixie cron's split:
// only a wildcard or step in the clock fields makes a job follow both passes of a repeated
// hour; a list such as "30 1,13 * * *" is fixed-time and fires once, like "30 1 * * *".
const CRON_OPTIONS = { mode: "5-or-6-parts", domAndDow: false, fixedTimeRule: "no-wildcard" } as const satisfies CronOptions;
// The most fires one call computes; callers ask for 1 (the next alarm) or a preview of <= 100.
const MAX_FIRES = 1000;
/** The longest interval a trigger may have (5 years of 365 days). */
export const MAX_INTERVAL_MS = 5 * 365 * 86_400_000;

/** Job-level values a trigger inherits when it does not set its own. */
export interface TriggerDefaults {
  timezone?: string;
  /** ISO 8601 or epoch ms; for an interval, pass the job's creation time when the user gave none. */
  start_date?: string | number;
  end_date?: string | number;
  jitter?: number;
}

interface Bounds {
  timezone: string;
  /** Fires are at or after this instant. */
  startMs?: number;
  /** Fires are at or before this instant (inclusive, as APScheduler's end_date). */
  endMs?: number;
  jitter: number;
}

/** A trigger with the job's defaults applied and instants as epoch ms. */
export type ResolvedTrigger =
  | ({ type: "cron"; expression: string } & Bounds)
  | ({ type: "interval"; intervalMs: number } & Bounds)
  | { type: "date"; runAtMs: number; timezone: string; jitter: 0 };

/** Why a cron expression is unusable, or undefined when croner accepts it as 5 or 6 fields. */
export function cronExpressionProblem(expression: string): string | undefined {
  const fields = splitFields(expression);
  if (fields.length === 0) return "it is empty";
  if (fields[0]?.startsWith("@")) return `nicknames such as "${fields[0]}" are not supported; write the fields, e.g. "0 0 * * *"`;
  if (fields.length !== 5 && fields.length !== 6) {
    return `expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got ${fields.length}`;
  }
  // A whitelist first: croner reads a pattern containing ":" as a one-off date instead.
  const odd = fields.find((f) => !/^[0-9A-Za-z*,/#?+-]+$/.test(f));
  if (odd !== undefined) return `field ${JSON.stringify(odd)} has characters cron does not use`;
  // croner reads "?" as "*" in any field; Quartz allows it only as "no specific day".
  const days = [fields.length - 3, fields.length - 1];
  if (fields.some((f, i) => f.includes("?") && !(f === "?" && days.includes(i)))) {
    return `"?" is only allowed as the whole day-of-month or day-of-week field`;
  }
  const steps = normaliseSteps(fields);
  if ("problem" in steps) return steps.problem;
  try {
    new CronPattern(steps.fields.join(" "), undefined, CRON_OPTIONS);
    return undefined;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).replace(/^CronPattern: /, "");
  }
}

const MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

/** Each field's values, seconds first (a 5-field expression starts at minutes), and the names it takes. */
const FIELDS: readonly CronField[] = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTH_NAMES },
  // Up to Saturday, as croniter: "1/2" is Monday, Wednesday, Friday (croner's 7 for Sunday starts no step).
  { name: "day-of-week", min: 0, max: 6, names: DAY_NAMES },
];

/** A step after a single value: a number (`5/15`) or a month or day name (`MON/2`). */
const STEP_FROM_VALUE = /^([0-9]+|[A-Za-z]{3})\/([0-9]+)$/;

/**
 * One list element with a step after a single value written as the range croner reads,
 * `5/15` as `5-59/15`: from that value to the field's maximum, as Quartz and croniter read it
 * (croner refuses the short form). Anything else is returned as it is.
 */
function normaliseStep(part: string, field: CronField): string | { problem: string } {
  const [, start, every] = STEP_FROM_VALUE.exec(part) ?? [];
  if (start === undefined || every === undefined) return part;
  if (/^[0-9]+$/.test(start)) {
    const value = Number(start);
    if (value < field.min || value > field.max) {
      return { problem: `"${part}" starts at ${value}, outside the ${field.name} field (${field.min}-${field.max})` };
    }
  } else if (!field.names?.includes(start.toLowerCase())) {
    return part; // not a name this field knows: croner says what is wrong with it
  }
  return `${start}-${field.max}/${every}`;
}

/** normaliseStep over every element of every field (`0/15,7` too); a start outside its field is a problem. */
function normaliseSteps(fields: string[]): { fields: string[] } | { problem: string } {
  if (fields.length !== 5 && fields.length !== 6) return { fields };
  const specs = FIELDS.slice(FIELDS.length - fields.length);
  const out: string[] = [];
  for (const [i, field] of fields.entries()) {
    const spec = specs[i];
    if (spec === undefined) return { fields };
    const parts: string[] = [];
    for (const part of field.split(",")) {
      const normalised = normaliseStep(part, spec);
      if (typeof normalised !== "string") return normalised;
      parts.push(normalised);
    }
    out.push(parts.join(","));
  }
  return { fields: out };
}

/**
 * A cron expression as croner evaluates it: fields separated by single spaces, and each step
 * after a single value (`5/15`, `MON/2`) written as a range to the field's maximum (`5-59/15`).
 * Validation and evaluation both read expressions through this one function.
 */
export function normaliseCronSteps(expression: string): string {
  const steps = normaliseSteps(splitFields(expression));
  return "fields" in steps ? steps.fields.join(" ") : splitFields(expression).join(" ");
}

/** Total length of an interval trigger in ms (NaN when a unit is not a finite number). */
export function intervalMs(units: { weeks?: number; days?: number; hours?: number; minutes?: number; seconds?: number }): number {
  const { weeks = 0, days = 0, hours = 0, minutes = 0, seconds = 0 } = units;
  return Math.round(((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000);
}

/** Applies the job's defaults (the trigger's own timezone, dates and jitter win; zone defaults to UTC). */
export function resolveTrigger(trigger: Trigger, job: TriggerDefaults = {}): ResolvedTrigger {
  const timezone = trigger.timezone ?? job.timezone ?? "UTC";
  // APScheduler's DateTrigger has no window or jitter: run_at is the one instant.
  if (trigger.type === "date") return { type: "date", runAtMs: Date.parse(trigger.run_at), timezone, jitter: 0 };
  const bounds: Bounds = {
    timezone,
    startMs: toMs(trigger.start_date ?? job.start_date),
    endMs: toMs(trigger.end_date ?? job.end_date),
    jitter: trigger.jitter ?? job.jitter ?? 0,
  };
  if (trigger.type === "cron") return { type: "cron", expression: normaliseCronSteps(trigger.expression), ...bounds };
  return { type: "interval", intervalMs: intervalMs(trigger), ...bounds };
}

/**
 * Up to `count` fire instants strictly after `afterMs`, never before startMs nor after endMs.
 * Strictly after, for every type, so passing the fire just handled never returns it again.
 */
export function nextFireTimes(trigger: ResolvedTrigger, afterMs: number, count: number): number[] {
  const n = Math.min(Math.floor(count), MAX_FIRES);
  if (!(n > 0) || !Number.isFinite(afterMs)) return [];
  if (trigger.type === "date") return trigger.runAtMs > afterMs ? [trigger.runAtMs] : [];
  return trigger.type === "interval" ? intervalFires(trigger, afterMs, n) : cronFires(trigger, afterMs, n);
}

/**
 * Interval fires are startMs + k * interval in elapsed time, so `days: 1` moves the wall
 * time across DST (APScheduler). Without a start the anchor is afterMs, making the first
 * fire afterMs + interval: APScheduler's default start_date of "now + interval".
 */
function intervalFires(t: Bounds & { intervalMs: number }, afterMs: number, n: number): number[] {
  if (!(t.intervalMs >= 1000)) return [];
  const anchor = t.startMs ?? afterMs;
  let k = afterMs < anchor ? 0 : Math.floor((afterMs - anchor) / t.intervalMs) + 1;
  const out: number[] = [];
  for (; out.length < n; k++) {
    const at = anchor + k * t.intervalMs;
    if (t.endMs !== undefined && at > t.endMs) break;
    out.push(at);
  }
  return out;
}

function cronFires(t: Bounds & { expression: string }, afterMs: number, n: number): number[] {
  const cron = new Cron(t.expression, { ...CRON_OPTIONS, timezone: t.timezone, paused: true });
  // One ms before the start makes a fire exactly at start_date count (start is inclusive).
  let cursor = t.startMs === undefined ? afterMs : Math.max(afterMs, t.startMs - 1);
  const out: number[] = [];
  while (out.length < n) {
    // croner gives up after year 9999, so a pattern that never fires (Feb 30) returns null.
    const next = cron.nextRun(new Date(cursor));
    if (next === null) break;
    const at = next.getTime();
    if (t.endMs !== undefined && at > t.endMs) break;
    if (at <= cursor) break; // croner always moves forward; this only rules out a loop
    out.push(at);
    cursor = at;
  }
  return out;
}

/** Delays a fire by a uniform random 0..jitterSeconds (APScheduler adds, never subtracts). */
export function applyJitter(fireMs: number, jitterSeconds: number, random: () => number = Math.random): number {
  if (!(jitterSeconds > 0)) return fireMs;
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return fireMs + Math.round(unit * jitterSeconds * 1000);
}

/** A fire as UTC, local wall time and offset, with a DST note when the change moved or repeated it. */
export function describeFire(fireMs: number, timezone: string, expression?: string): FireTime {
  const pattern = expression === undefined ? undefined : new CronPattern(expression, undefined, CRON_OPTIONS);
  const note = dstNote(fireMs, timezone, pattern);
  return {
    at: new Date(fireMs).toISOString(),
    local: formatWall(wallTime(fireMs, timezone)),
    utc_offset: formatOffset(offsetMinutes(fireMs, timezone)),
    ...(note === undefined ? {} : { note }),
  };
}

/** The next `count` fires after `afterMs`, described for people (jitter is not applied). */
export function previewFires(trigger: ResolvedTrigger, afterMs: number, count: number): TriggerPreview {
  const expression = trigger.type === "cron" ? trigger.expression : undefined;
  return {
    timezone: trigger.timezone,
    items: nextFireTimes(trigger, afterMs, count).map((at) => describeFire(at, trigger.timezone, expression)),
  };
}

function splitFields(expression: string): string[] {
  return expression
    .trim()
    .split(/\s+/)
    .filter((f) => f !== "");
}

function toMs(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === "number" ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
