import { bodyLimit } from "hono/body-limit";
import { dashboardRoutes } from "./dashboard/routes";
import { ApiError, errorResponse } from "./errors";
import { healthRoutes } from "./health/routes";
import { hostRoutes } from "./hosts/routes";
import { accessLog } from "./http/access-log";
import { requireToken } from "./http/auth";
import { allowedMethods } from "./http/method-not-allowed";
import { openApiApp } from "./http/openapi-app";
import { requestId } from "./http/request-id";
import { staticFileRoutes } from "./http/static-files";
import { jobRoutes } from "./jobs/routes";
import { metricsRoutes } from "./observe/metrics";
import { mountOpenApi } from "./observe/openapi";
import { statsRoutes } from "./observe/stats-routes";
import { runRoutes } from "./runs/routes";
import { schedulerRoutes } from "./scheduling/scheduler-routes";
import { taskRoutes } from "./tasks/routes";

/** Request bodies above this are refused with 413 (the design's cap). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Builds the Hono app: middleware first, then one `route()` per area. */
export function createApp() {
  const app = openApiApp();
  app.use("*", requestId, accessLog);
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError("payload_too_large", `Request body exceeds ${MAX_BODY_BYTES} bytes`);
    },
  });
  // GET and HEAD carry no body; bodyLimit would rebuild such a request and fail on a stray one.
  app.use("*", (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limitBody(c, next)));
  app.use("/v1/*", requireToken);
  app.use("/metrics", requireToken);

  app.route("/", healthRoutes);
  app.route("/", metricsRoutes);
  app.route("/", dashboardRoutes);
  app.route("/", staticFileRoutes);
  app.route("/v1", schedulerRoutes);
  app.route("/v1", taskRoutes);
  app.route("/v1", runRoutes);
  app.route("/v1", jobRoutes);
  app.route("/v1", statsRoutes);
  app.route("/v1", hostRoutes);
  mountOpenApi(app);

  const methodsFor = allowedMethods(app);
  app.notFound((c) => {
    const allowed = methodsFor(c.req.path);
    if (allowed.length > 0) {
      return errorResponse(
        c,
        new ApiError("method_not_allowed", `Method ${c.req.method} is not allowed on ${c.req.path}`, undefined, {
          Allow: allowed.join(", "),
        }),
      );
    }
    return errorResponse(c, new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}`));
  });
  app.onError((error, c) => errorResponse(c, error));
  return app;
}
