import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./types";

const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Uses the caller's `x-request-id` when it is a sane token, otherwise a new UUID; echoes it. */
export const requestId = createMiddleware<AppEnv>(async (c, next) => {
  const offered = c.req.header("x-request-id");
  const id = offered && ACCEPTABLE_ID.test(offered) ? offered : crypto.randomUUID();
  c.set("requestId", id);
  await next();
  c.header("x-request-id", id);
});
