import { Hono } from "hono";
import { dashboardStylesheet } from "../dashboard/stylesheet";
import { ApiError } from "../errors";
import { docsScript } from "../observe/docs";
import type { AppEnv } from "./types";

/** The few small files the pages load, bundled with the Worker (a few kB, no asset layer). */
const files: Record<string, { type: string; body: string }> = {
  "/static/dashboard.css": { type: "text/css; charset=utf-8", body: dashboardStylesheet },
  "/static/docs.js": { type: "text/javascript; charset=utf-8", body: docsScript },
};

/** GET|HEAD /static/*: public, no credentials; an unknown file gets the JSON 404. */
export const staticFileRoutes = new Hono<AppEnv>().get("/static/*", (c) => {
  const file = files[c.req.path];
  if (!file) throw new ApiError("not_found", `No static file at ${c.req.path}`);
  c.header("cache-control", "public, max-age=300");
  c.header("content-type", file.type);
  return c.body(file.body);
});
