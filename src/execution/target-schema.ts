import { z } from "@hono/zod-openapi";
import { FreeJson } from "../schemas/json";

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
// Headers Taskflare sets itself on every outbound request; a target may not forge them.
const RESERVED_HEADERS = new Set(["webhook-id", "webhook-timestamp", "webhook-signature", "x-request-id", "host", "content-length"]);

export const HttpMethod = z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]);

/** How long an attempt may take before it is aborted, in seconds. */
export const Timeout = z.number().int().min(1).max(900);

// Credentials are meant for the target's own origin: no target may send them on to another.
const NEVER_FORWARDED = new Set(["authorization", "cookie", "proxy-authorization"]);

const httpTargetFields = z
  .object({
    type: z.literal("http"),
    method: HttpMethod.default("POST"),
    url: z.string().min(1).max(2048),
    headers: z
      .record(z.string().regex(HEADER_NAME, "invalid header name").max(256), z.string().max(8192))
      .refine((h) => Object.keys(h).length <= 50, "at most 50 headers")
      .refine((h) => Object.keys(h).every((k) => !RESERVED_HEADERS.has(k.toLowerCase())), "reserved header")
      .optional(),
    forward_headers: z
      .array(
        z
          .string()
          .regex(HEADER_NAME, "invalid header name")
          .refine(
            (name) => !NEVER_FORWARDED.has(name.toLowerCase()),
            "credentials (authorization, cookie, proxy-authorization) never follow to another origin",
          ),
      )
      .max(50)
      .optional()
      .openapi({
        description:
          "Names of this target's own headers that may follow a redirect to another origin; without it none do. Never authorization, cookie or proxy-authorization.",
      }),
    body: FreeJson.optional().openapi({ description: "JSON value, or a string sent as is" }),
    timeout: Timeout.optional(),
  })
  .strict();

/** A name in `forward_headers` that is not among the target's headers would forward nothing: most likely a typo. */
function forwardsOwnHeaders(target: { headers?: Record<string, string>; forward_headers?: string[] }, ctx: z.RefinementCtx): void {
  const own = new Set(Object.keys(target.headers ?? {}).map((name) => name.toLowerCase()));
  target.forward_headers?.forEach((name, i) => {
    if (!own.has(name.toLowerCase())) {
      ctx.addIssue({ code: "custom", path: ["forward_headers", i], message: "not one of the target's headers" });
    }
  });
}

/** An outbound HTTP request: the common target. */
export const HttpTarget = httpTargetFields.superRefine(forwardsOwnHeaders).openapi("HttpTarget");

/** The HTTP target's fields without `type`: the arguments of the `http` handler. */
export const HttpTargetArgs = httpTargetFields.omit({ type: true }).superRefine(forwardsOwnHeaders);

/** A named TypeScript handler registered in this Worker. */
export const HandlerTarget = z
  .object({
    type: z.literal("handler"),
    name: z.string().min(1).max(100),
    args: FreeJson.optional(),
    timeout: Timeout.optional(),
  })
  .strict()
  .openapi("HandlerTarget");

/** What a job or task runs. Handler names and arguments are checked against the registry. */
export const Target = z.discriminatedUnion("type", [HttpTarget, HandlerTarget]).openapi("Target");

export type HttpTarget = z.infer<typeof HttpTarget>;
export type HandlerTarget = z.infer<typeof HandlerTarget>;
export type Target = z.infer<typeof Target>;

/** Retry policy: attempts in all (first included), exponential backoff base and cap in seconds. */
export const RetryPolicy = z
  .object({
    max_attempts: z.number().int().min(1).max(100).default(3),
    backoff: z.number().min(0).max(3600).default(2),
    max_delay: z.number().min(0).max(86_400).default(300),
  })
  .strict()
  .openapi("RetryPolicy");

export type RetryPolicy = z.infer<typeof RetryPolicy>;

/**
 * A retry policy as stored or given: runs keep theirs parsed (defaults filled), so only an
 * absent or partial one is parsed, not every policy on every attempt.
 */
export function retryPolicyOf(value: unknown): RetryPolicy {
  const given = value as Partial<RetryPolicy> | null | undefined;
  if (
    typeof given?.max_attempts === "number" &&
    typeof given.backoff === "number" &&
    typeof given.max_delay === "number" &&
    Object.keys(given).length === 3
  )
    return given as RetryPolicy;
  return RetryPolicy.parse(value ?? {});
}

export const Priority = z.enum(["high", "default"]);
export type Priority = z.infer<typeof Priority>;
