import { OpenAPIHono } from "@hono/zod-openapi";
import { ApiError, zodDetails } from "../errors";
import type { AppEnv } from "./types";

/** An OpenAPIHono whose validation failures become the standard 400 envelope. */
export function openApiApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new ApiError("validation_failed", `Invalid ${result.target}`, zodDetails(result.error));
      }
    },
  });
}
