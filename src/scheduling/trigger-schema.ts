import { z } from "@hono/zod-openapi";
import { isKnownTimeZone } from "./dst";
import { cronExpressionProblem, intervalMs, MAX_INTERVAL_MS } from "./triggers";

// Strict ISO 8601: an explicit Z or offset (a bare local time is ambiguous across DST),
// at most nanosecond precision (longer fractions are abuse, not precision).
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;
const DATE_TIME_EXAMPLE = "2027-01-01T00:00:00Z";

function dateTimeProblem(value: string): string | undefined {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return `expected an ISO 8601 date-time with Z or an offset, such as "${DATE_TIME_EXAMPLE}"`;
  const n = (group: number) => Number(m[group] ?? 0);
  const [year, month, day] = [n(1), n(2), n(3)];
  // Round-trip through a Date: Feb 30 or Apr 31 roll over into the next month.
  const calendar = new Date(0);
  calendar.setUTCFullYear(year, month - 1, day);
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    return `${value.slice(0, 10)} is not a calendar date`;
  }
  if (n(4) > 23 || n(5) > 59 || n(6) > 59 || n(7) > 23 || n(8) > 59) {
    return `${value.slice(11)} is not a valid time of day and offset`;
  }
  return Number.isFinite(Date.parse(value)) ? undefined : `${value} is outside the supported date range`;
}

/** An instant as ISO 8601 with Z or an offset; impossible dates such as Feb 30 are refused. */
export const IsoDateTime = z
  .string()
  .max(64)
  .superRefine((value, ctx) => {
    // zod's max() counts code points; this guard counts UTF-16 units, so report length here too.
    if (value.length > 64) {
      ctx.addIssue({ code: "custom", message: "date-time is longer than 64 characters" });
      return;
    }
    const problem = dateTimeProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .openapi({ format: "date-time", example: DATE_TIME_EXAMPLE });

/** An IANA time zone name known to the runtime, e.g. "Asia/Taipei". */
export const TimeZone = z
  .string()
  .max(64)
  .superRefine((value, ctx) => {
    if (value.length > 64 || !isKnownTimeZone(value)) {
      ctx.addIssue({ code: "custom", message: `unknown time zone ${JSON.stringify(value)}` });
    }
  })
  .openapi({ example: "Asia/Taipei", description: "IANA time zone name" });

/** Random delay added to each fire, 0 to this many seconds (APScheduler's `jitter`). */
export const Jitter = z.number().int().min(0).max(86_400).openapi({ description: "Seconds of random delay, 0-86400" });

/** Fields a job and its cron/interval trigger may both set; the trigger's value wins. Spread into the job schema. */
export const schedulingFields = {
  timezone: TimeZone.optional(),
  start_date: IsoDateTime.optional(),
  end_date: IsoDateTime.optional(),
  jitter: Jitter.optional(),
};

function checkDateOrder(t: { start_date?: string; end_date?: string }, ctx: z.RefinementCtx): void {
  if (t.start_date && t.end_date && Date.parse(t.end_date) < Date.parse(t.start_date)) {
    ctx.addIssue({ code: "custom", path: ["end_date"], message: "end_date is before start_date" });
  }
}

/** A cron expression (5 fields, or 6 with seconds first) evaluated in a time zone. */
export const CronTrigger = z
  .strictObject({
    type: z.literal("cron"),
    expression: z
      .string()
      .max(200)
      .superRefine((value, ctx) => {
        const problem = value.length <= 200 ? cronExpressionProblem(value) : "expression is longer than 200 characters";
        if (problem) ctx.addIssue({ code: "custom", message: `invalid cron expression: ${problem}` });
      })
      .openapi({ example: "0 30 2 * * *" }),
    ...schedulingFields,
  })
  .superRefine(checkDateOrder)
  .openapi("CronTrigger");

const unit = z.number().min(0, "must not be negative");

/** A fixed elapsed-time interval anchored at start_date (days: 1 is 24 h, even across DST). */
export const IntervalTrigger = z
  .strictObject({
    type: z.literal("interval"),
    weeks: unit.optional(),
    days: unit.optional(),
    hours: unit.optional(),
    minutes: unit.optional(),
    seconds: unit.optional(),
    ...schedulingFields,
  })
  .superRefine((t, ctx) => {
    const ms = intervalMs(t);
    if (!(ms >= 1000)) ctx.addIssue({ code: "custom", message: "interval must add up to at least 1 second" });
    else if (ms > MAX_INTERVAL_MS) ctx.addIssue({ code: "custom", message: "interval must be at most 5 years" });
    checkDateOrder(t, ctx);
  })
  .openapi("IntervalTrigger");

/** A one-off fire at an instant; afterwards the job is finished. */
export const DateTrigger = z
  .strictObject({
    type: z.literal("date"),
    run_at: IsoDateTime,
    timezone: TimeZone.optional().openapi({ description: "Only used to show local times" }),
  })
  .openapi("DateTrigger");

/** When a job fires: cron, interval or date. */
export const Trigger = z.discriminatedUnion("type", [CronTrigger, IntervalTrigger, DateTrigger]).openapi("Trigger");

export type CronTrigger = z.infer<typeof CronTrigger>;
export type IntervalTrigger = z.infer<typeof IntervalTrigger>;
export type DateTrigger = z.infer<typeof DateTrigger>;
export type Trigger = z.infer<typeof Trigger>;

/** Body of POST /v1/triggers/preview: a trigger and, optionally, the job-level defaults it would get. */
export const TriggerPreviewRequest = z
  .object({
    trigger: Trigger,
    count: z.number().int().min(1, "count must be 1-100").max(100, "count must be 1-100").default(10),
    after: IsoDateTime.optional().openapi({ description: "List fires strictly after this instant (default: now)" }),
    timezone: TimeZone.optional(),
    start_date: IsoDateTime.optional(),
    end_date: IsoDateTime.optional(),
  })
  .openapi("TriggerPreviewRequest");

/** One fire time as UTC, local wall time and offset, with a note when DST moved or repeated it. */
export const FireTime = z
  .object({
    at: z.string().openapi({ example: "2024-03-10T07:00:00.000Z" }),
    local: z.string().openapi({ example: "2024-03-10T03:00:00" }),
    utc_offset: z.string().openapi({ example: "-04:00" }),
    note: z.string().optional(),
  })
  .openapi("FireTime");

/** Response of POST /v1/triggers/preview. */
export const TriggerPreview = z.object({ items: z.array(FireTime), timezone: z.string() }).openapi("TriggerPreview");

export type TriggerPreviewRequest = z.infer<typeof TriggerPreviewRequest>;
export type FireTime = z.infer<typeof FireTime>;
export type TriggerPreview = z.infer<typeof TriggerPreview>;
