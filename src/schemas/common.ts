import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";

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

/** A JSON response entry of a route declaration. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** An error answer: the envelope, with what the status means here. */
export function documentedError(description: string) {
  return jsonResponse(ErrorEnvelope, description);
}

const seconds = { type: "integer", minimum: 0 } as const;

/** 401: `/v1`, `/metrics` and `/dashboard` need the API token. */
export const unauthorized = {
  ...documentedError("Missing or invalid bearer token"),
  headers: { "WWW-Authenticate": { description: "The bearer challenge", schema: { type: "string" } } },
} as const;

/** 503: a transient storage failure (or no API token configured); never a 500. */
export const unavailable = {
  ...documentedError("D1 or a Durable Object is briefly unavailable (retry after Retry-After), or no API token is configured"),
  headers: { "Retry-After": { description: "Seconds to wait before retrying", schema: seconds } },
} as const;

const invalid = documentedError("Invalid request: the message names the first problems, details lists every field");
const tooLarge = documentedError("Request body over 1 MiB");
const unsupportedMediaType = documentedError("Request body is not application/json");
const takesBody = new Set(["post", "put", "patch", "delete"]);

/**
 * The answers any `/v1` route may give besides its own, from what it takes:
 * 400 when it reads input, 413 for a method with a body (the body limit
 * applies before routing), 415 when that body is JSON; 401 and 503 always.
 */
export function apiErrors(route: Pick<RouteConfig, "method" | "request">) {
  const request = route.request;
  const readsInput = Boolean(request?.params || request?.query || request?.headers || request?.body);
  return {
    ...(readsInput ? { 400: invalid } : {}),
    401: unauthorized,
    ...(takesBody.has(route.method) ? { 413: tooLarge } : {}),
    ...(request?.body?.content["application/json"] ? { 415: unsupportedMediaType } : {}),
    503: unavailable,
  };
}

/** Declares a `/v1` route with `apiErrors` added, so no route can leave a status it answers out of the document. */
export function apiRoute<P extends string, R extends Omit<RouteConfig, "path"> & { path: P }>(route: R) {
  return createRoute({ ...route, responses: { ...apiErrors(route), ...route.responses } });
}

/** A required JSON request body. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}
