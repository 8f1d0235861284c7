import { z } from "@hono/zod-openapi";
import { HttpTarget, Priority, RetryPolicy, Target, Timeout } from "../execution/target-schema";
import { FireTime, schedulingFields, Trigger } from "../scheduling/trigger-schema";
import { FreeJson } from "../schemas/json";

/** A job id: a slug the user chooses (or one is generated). */
export const JobId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-', starting with a letter or digit")
  .openapi({ example: "nightly-report" });

/** Default seconds a fire may be late and still run (DO alarms can be late in a failover). */
export const DEFAULT_MISFIRE_GRACE_SECONDS = 60;

/** Where and when to alert about a job (each alert fires once per incident, and once on recovery). */
export const JobAlerts = z
  .strictObject({
    target: HttpTarget,
    on_dead: z.boolean().default(true).openapi({ description: "Alert when a run ends dead" }),
    after_consecutive_failures: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .openapi({ description: "Alert after N failed, dead or missed runs in a row" }),
    expect_success_within: z
      .number()
      .int()
      .min(60)
      .max(31_536_000)
      .optional()
      .openapi({ description: "Dead-man's switch: alert when no run succeeded for this many seconds" }),
  })
  .openapi("JobAlerts");
export type JobAlerts = z.infer<typeof JobAlerts>;

const jobFields = {
  name: z.string().min(1).max(200).optional(),
  trigger: Trigger,
  target: Target,
  ...schedulingFields,
  max_instances: z.number().int().min(1).max(100).default(1),
  coalesce: z.boolean().default(true),
  misfire_grace_time: z
    .number()
    .int()
    .min(1)
    .max(31_536_000)
    .nullable()
    .default(DEFAULT_MISFIRE_GRACE_SECONDS)
    .openapi({ description: "Seconds a fire may be late and still run; null for no limit" }),
  retry: RetryPolicy.optional(),
  timeout: Timeout.optional(),
  priority: Priority.default("default"),
  paused: z.boolean().default(false),
  alerts: JobAlerts.optional(),
  tags: z.array(z.string().min(1).max(64)).max(20).optional(),
  metadata: z
    .record(z.string().max(64), FreeJson)
    .optional()
    .refine((m) => m === undefined || JSON.stringify(m).length <= 16_384, "metadata is larger than 16 KiB"),
};

/** The window a job fires in: the trigger's own start/end win over the job's. */
function checkWindow(job: { trigger: Trigger; start_date?: string; end_date?: string }, ctx: z.RefinementCtx): void {
  const own: { start_date?: string; end_date?: string } = job.trigger.type === "date" ? {} : job.trigger;
  const start = own.start_date ?? job.start_date;
  const end = own.end_date ?? job.end_date;
  if (start && end && Date.parse(end) < Date.parse(start)) {
    ctx.addIssue({ code: "custom", path: ["end_date"], message: "end_date is before start_date" });
  }
}

/** Body of `PUT /v1/jobs/:id` (the id is in the path). */
export const JobDefinition = z.object(jobFields).strict().superRefine(checkWindow).openapi("JobDefinition");
/** Body of `POST /v1/jobs`. */
export const JobCreate = z
  .object({ id: JobId.optional(), ...jobFields })
  .strict()
  .superRefine(checkWindow)
  .openapi("JobCreate");
/** Body of `PATCH /v1/jobs/:id`: any subset; a new trigger reschedules. */
export const JobPatch = z
  .object({
    name: jobFields.name,
    trigger: Trigger.optional(),
    target: Target.optional(),
    ...schedulingFields,
    max_instances: z.number().int().min(1).max(100).optional(),
    coalesce: z.boolean().optional(),
    misfire_grace_time: z.number().int().min(1).max(31_536_000).nullable().optional(),
    retry: RetryPolicy.optional(),
    timeout: Timeout.optional(),
    priority: Priority.optional(),
    paused: z.boolean().optional(),
    alerts: JobAlerts.nullable().optional().openapi({ description: "null removes the alerts" }),
    tags: jobFields.tags,
    metadata: jobFields.metadata,
  })
  .strict()
  .openapi("JobPatch");

export type JobDefinition = z.infer<typeof JobDefinition>;
export type JobPatch = z.infer<typeof JobPatch>;

export const JobState = z.enum(["active", "paused", "finished"]).openapi("JobState");

/** A job as the API returns it. */
export const Job = z
  .object({
    id: z.string(),
    ...jobFields,
    name: z.string(),
    state: JobState,
    version: z.number().int(),
    next_run_at: z.string().datetime().nullable(),
    last_run_at: z.string().datetime().nullable(),
    created_at: z.string().datetime(),
    updated_at: z.string().datetime(),
    next_run_times: z.array(FireTime).optional().openapi({ description: "The next five fires (GET /v1/jobs/:id)" }),
  })
  .openapi("Job");
export type Job = z.infer<typeof Job>;

export const JobList = z.object({ items: z.array(Job), next_cursor: z.string().nullable() }).openapi("JobList");

/** The If-Match header of a job write: the ETag (version) the change was computed from, or `*`. */
export const IfMatchHeader = z.object({
  "if-match": z
    .string()
    .max(1024)
    .optional()
    .openapi({ description: 'Only write if the job is at this ETag (412 otherwise); "*" matches any existing job', example: '"3"' }),
});

export const JobListQuery = z.object({
  state: JobState.optional(),
  tag: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
