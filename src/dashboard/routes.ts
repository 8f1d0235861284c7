import { Hono } from "hono";
import { ApiError } from "../errors";
import { requireAuth } from "../http/auth";
import type { AppEnv } from "../http/types";
import { runJobNow, setJobPaused } from "../jobs/service";
import { loadDashboard } from "./data";
import { dashboardPage } from "./page";

/**
 * A cross-site form could ride on the browser's Basic credentials, so every
 * dashboard action must come from this origin (browsers always send Origin on POST).
 */
function requireSameOrigin(origin: string | undefined, requestUrl: string): void {
  if (!origin || origin !== new URL(requestUrl).origin) {
    throw new ApiError("forbidden", "Dashboard actions must come from the dashboard's own origin");
  }
}

const messages: Record<string, string> = { pause: "paused", resume: "resumed", run: "started a run of" };

/** GET /dashboard and its same-origin actions; the token comes as HTTP Basic password or bearer. */
export const dashboardRoutes = new Hono<AppEnv>()
  .use("/dashboard", requireAuth(["bearer", "basic"]))
  .use("/dashboard/*", requireAuth(["bearer", "basic"]))
  .get("/dashboard", async (c) => {
    const flash = c.req.query("done");
    c.header("cache-control", "no-store");
    c.header(
      "content-security-policy",
      "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    return c.html(dashboardPage(await loadDashboard(c.env), flash));
  })
  .post("/dashboard/jobs/:id/:action{pause|resume|run}", async (c) => {
    requireSameOrigin(c.req.header("origin"), c.req.url);
    const { id, action } = c.req.param();
    if (action === "run") await runJobNow(c.env, id, c.get("requestId"));
    else await setJobPaused(c.env, id, action === "pause");
    return c.redirect(`/dashboard?done=${encodeURIComponent(`${messages[action] ?? action} ${id}`)}`, 303);
  });
