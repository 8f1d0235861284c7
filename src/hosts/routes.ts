import { createRoute, z } from "@hono/zod-openapi";
import { openApiApp } from "../http/openapi-app";
import { errorResponses } from "../schemas/common";
import { hostGuard, noteFreePass } from "./guard-client";
import { HostName, HostPolicyInput, HostStatus } from "./schema";

const Params = z.object({ host: HostName });
const status = {
  200: { description: "The host's policy and circuit state", content: { "application/json": { schema: HostStatus } } },
  ...errorResponses,
};

const put = createRoute({
  method: "put",
  path: "/hosts/{host}",
  tags: ["hosts"],
  summary: "Set a host's circuit breaker, rate limit and concurrency cap",
  request: { params: Params, body: { required: true, content: { "application/json": { schema: HostPolicyInput } } } },
  responses: status,
});
const get = createRoute({
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
