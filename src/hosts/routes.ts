import { z } from "@hono/zod-openapi";
import { openApiApp } from "../http/openapi-app";
import { apiRoute, jsonResponse as json, jsonBody } from "../schemas/common";
import { hostGuard, noteFreePass } from "./guard-client";
import { HostName, HostPolicyInput, HostStatus } from "./schema";

const Params = z.object({ host: HostName });
const status = { 200: json(HostStatus, "The host's policy and circuit state") };

const put = apiRoute({
  method: "put",
  path: "/hosts/{host}",
  tags: ["hosts"],
  summary: "Set a host's circuit breaker, rate limit and concurrency cap",
  request: { params: Params, body: jsonBody(HostPolicyInput) },
  responses: status,
});
const get = apiRoute({
  method: "get",
  path: "/hosts/{host}",
  tags: ["hosts"],
  summary: "A host's guard: policy, circuit, in-flight runs",
  request: { params: Params },
  responses: status,
});

/** Per-host guards for outbound HTTP runs. */
export const hostRoutes = openApiApp()
  .openapi(put, async (c) => {
    const host = c.req.valid("param").host;
    // A new policy applies to this isolate at once; others learn it from their next call's report.
    noteFreePass(host, null);
    return c.json(await hostGuard(c.env, host).configure(host, c.req.valid("json")), 200);
  })
  .openapi(get, async (c) => {
    const host = c.req.valid("param").host;
    const answer = await hostGuard(c.env, host).status();
    return c.json({ ...answer, host }, 200);
  });
