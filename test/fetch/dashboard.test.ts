import { afterEach, describe, expect, it } from "vitest";
import { api, BASE, call, TOKEN } from "../helpers/http";
import { createJob, deleteJob } from "../helpers/jobs";

const basic = (password: string) => `Basic ${btoa(`admin:${password}`)}`;
const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) await deleteJob(created.pop() ?? "");
});

async function job(id: string) {
  created.push(id);
  return createJob({
    id,
    trigger: { type: "cron", expression: "30 2 * * *", timezone: "America/New_York" },
    target: { type: "http", url: "https://example.com/x" },
  });
}

describe("GET /dashboard", () => {
  it("asks a browser for credentials with a Basic challenge", async () => {
    const res = await call("/dashboard");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="taskflare"/);
  });

  it("accepts the token as the Basic password or as a bearer token, and never writes it into the page", async () => {
    await job(`dash-${Date.now()}`);
    for (const authorization of [basic(TOKEN), `Bearer ${TOKEN}`]) {
      const res = await call("/dashboard", { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      const page = await res.text();
      expect(page).not.toContain(TOKEN);
    }
    expect((await call("/dashboard", { headers: { authorization: basic("wrong") } })).status).toBe(401);
  });

  it("lists jobs with their state, next local fire, DST notes and action buttons", async () => {
    const id = `dash-row-${Date.now()}`;
    await job(id);
    const page = await (await call("/dashboard", { headers: { authorization: basic(TOKEN) } })).text();
    const row = page.slice(page.indexOf(`<tr data-job="${id}">`), page.indexOf("</tr>", page.indexOf(`<tr data-job="${id}">`)));
    expect(row).toContain('class="state active"');
    expect(row).toContain("cron 30 2 * * * (America/New_York)");
    expect(row).toMatch(/T02:30:00|T03:00:00/);
    expect(row).toContain(`action="/dashboard/jobs/${id}/pause"`);
    expect(row).toContain(`action="/dashboard/jobs/${id}/run"`);
    expect(page).toContain('<svg class="chart"');
  });
});

describe("dashboard actions", () => {
  it("pause from the dashboard's own origin pauses the job and redirects back", async () => {
    const id = `dash-pause-${Date.now()}`;
    await job(id);
    const res = await call(`/dashboard/jobs/${id}/pause`, {
      method: "POST",
      headers: { authorization: basic(TOKEN), origin: BASE },
      redirect: "manual",
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/^\/dashboard\?done=/);
    expect((await (await api(`/v1/jobs/${id}`)).json<{ state: string }>()).state).toBe("paused");
  });

  it.each([
    ["no Origin", {}],
    ["a cross-site Origin", { origin: "https://evil.example" }],
  ])("refuses an action with %s, so no cross-site form can pause a job", async (_name, headers) => {
    const id = `dash-csrf-${Date.now()}`;
    await job(id);
    const res = await call(`/dashboard/jobs/${id}/pause`, {
      method: "POST",
      headers: { authorization: basic(TOKEN), ...headers },
      redirect: "manual",
    });
    expect(res.status).toBe(403);
    expect((await (await api(`/v1/jobs/${id}`)).json<{ state: string }>()).state).toBe("active");
  });

  it("needs credentials for actions too", async () => {
    const res = await call("/dashboard/jobs/any/pause", { method: "POST", headers: { origin: BASE } });
    expect(res.status).toBe(401);
  });
});

describe("GET /docs", () => {
  it("loads pinned Swagger UI with integrity hashes, and lists every operation itself for when the CDN is out of reach", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    const page = await res.text();
    const external = [...page.matchAll(/<(?:script|link)[^>]*(?:src|href)="(https:[^"]+)"[^>]*>/g)];
    expect(external.map((m) => m[1])).toEqual([
      "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui.css",
      "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui-bundle.js",
    ]);
    for (const [tag] of external) expect(tag).toMatch(/integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous"/);
    expect(page).toContain('<script src="/static/docs.js">');
    const spec = await (await call("/openapi.json")).json<{ paths: Record<string, Record<string, unknown>> }>();
    const listed = [...page.matchAll(/<li><code>([A-Z]+) ([^<]+)<\/code>/g)].map((m) => `${m[1]} ${m[2]}`);
    const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(listed.sort()).toEqual(operations.sort());
    expect(listed).toContain("POST /v1/tasks");
  });
});

describe("GET /static/*", () => {
  it.each([
    ["the dashboard stylesheet", "/static/dashboard.css", "text/css"],
    ["the API reference's start script", "/static/docs.js", "javascript"],
  ])("serves %s without credentials", async (_name, path, type) => {
    const res = await call(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain(type);
    expect(res.headers.get("cache-control")).toContain("public");
    expect((await res.text()).length).toBeGreaterThan(100);
    const head = await call(path, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("answers a missing file with the JSON 404", async () => {
    const res = await call("/static/missing.css");
    expect(res.status).toBe(404);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("not_found");
  });
});
