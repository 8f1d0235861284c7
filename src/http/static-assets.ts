import { Hono } from "hono";
import { ApiError } from "../errors";
import type { AppEnv } from "./types";

/**
 * GET|HEAD /static/*: the dashboard's stylesheet and the API reference page's
 * files, from Workers Static Assets. The Worker runs first on every path
 * (`run_worker_first` in wrangler.toml), so it hands these to the assets itself.
 */
export const staticAssetRoutes = new Hono<AppEnv>().on(["GET", "HEAD"], "/static/*", async (c) => {
  const res = await c.env.ASSETS.fetch(c.req.raw);
  // A missing file gets the same JSON 404 as any other unknown path.
  if (res.status === 404) throw new ApiError("not_found", `No static file at ${c.req.path}`);
  return res;
});
