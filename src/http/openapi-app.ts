import { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import { ApiError, zodDetails, zodSummary } from "../errors";
import type { AppEnv } from "./types";

/** What each part of a request a validator reads is called in a message. */
const PARTS: Record<string, string> = { query: "query parameter", param: "path parameter", header: "header", cookie: "cookie" };

/** Says what was invalid: "Invalid request body: target.url: Required", "Invalid query parameter limit: …". */
export function validationMessage(target: string, error: ZodError): string {
  if (target === "json" || target === "form") return `Invalid request body: ${zodSummary(error)}`;
  const part = PARTS[target] ?? target;
  const [only, ...rest] = error.issues;
  // One named parameter reads as a phrase; several (or a problem with the whole part) as a list.
  if (only && only.path.length > 0 && rest.length === 0) return `Invalid ${part} ${zodSummary(error)}`;
  return `Invalid ${part}s: ${zodSummary(error)}`;
}

/** An OpenAPIHono whose validation failures become the standard 400 envelope. */
export function openApiApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new ApiError("validation_failed", validationMessage(result.target, result.error), zodDetails(result.error));
      }
    },
  });
}
