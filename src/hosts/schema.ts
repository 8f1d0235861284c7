import { z } from "@hono/zod-openapi";

/**
 * A host as Taskflare keys it: the URL's host (name and port), lower-case.
 * The pattern spells out both cases instead of using a flag: OpenAPI's
 * `pattern` is a bare ECMA regex, so a flag would reach clients as text.
 */
export const HostName = z
  .string()
  .min(1)
  .max(260)
  // biome-ignore lint/complexity/noUselessEscapeInRegex: escaped, the class means the same in the regex dialects of other clients (Python, the v flag).
  .regex(/^[A-Za-z0-9.:\[\]\-]+$/, "a host name, optionally with :port")
  .transform((h) => h.toLowerCase());

/** Per-host guard settings (the circuit breaker's, and optional smoothing of bursts). */
export const HostPolicyInput = z
  .strictObject({
    failure_threshold: z.number().int().min(1).max(1000).default(5).openapi({ description: "Consecutive failures that open the circuit" }),
    cooldown: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(30)
      .openapi({ description: "Seconds the circuit stays open before one probe is let through" }),
    rate_limit: z.strictObject({ requests: z.number().int().min(1).max(100_000), period: z.number().int().min(1).max(86_400) }).optional(),
    max_concurrency: z.number().int().min(1).max(1000).optional(),
  })
  .openapi("HostPolicy");

export const HostStatus = z
  .object({
    host: z.string(),
    policy: HostPolicyInput,
    circuit: z.enum(["closed", "open", "half_open"]),
    consecutive_failures: z.number().int(),
    opened_at: z.string().nullable(),
    in_flight: z.number().int(),
    reserved_slots: z.number().int(),
  })
  .openapi("HostStatus");
export type HostStatus = z.infer<typeof HostStatus>;
