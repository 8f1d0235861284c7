import { z } from "@hono/zod-openapi";

/** The error envelope every non-2xx response carries. */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "validation_failed" }),
      message: z.string(),
      details: z.unknown().optional(),
      request_id: z.string(),
    }),
  })
  .openapi("Error");

/** Standard error responses shared by every authenticated route. */
export const errorResponses = {
  400: { description: "Invalid request", content: { "application/json": { schema: ErrorEnvelope } } },
  401: { description: "Missing or invalid bearer token", content: { "application/json": { schema: ErrorEnvelope } } },
  503: {
    description: "Storage (D1 or a Durable Object) is briefly unavailable; nothing was done. Retry after `Retry-After` seconds",
    content: { "application/json": { schema: ErrorEnvelope } },
  },
} as const;

/** A JSON response entry of a route declaration. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}
