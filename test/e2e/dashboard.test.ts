import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SWAGGER_UI } from "../../src/observe/docs";
import { launchChromium } from "./browser";
import { type DevServer, startDevServer } from "./dev-server";
import { type Receiver, startReceiver } from "./receiver";

const screenshots = join(import.meta.dirname, "..", "..", "docs", "screenshots");
/** Where /docs loads Swagger UI from, and the package it is served from here (the same version: asserted below). */
const SWAGGER_UI_CDN = SWAGGER_UI.base;
const swaggerUiDist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

interface Stats {
  overall: { runs: { total: number }; success_rate: number | null };
  jobs: { job_id: string | null; success_rate: number | null }[];
}

describe("the dashboard and docs in a browser", () => {
  let server: DevServer;
  let receiver: Receiver;
  let browser: Browser;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" } });

  async function seed(): Promise<void> {
    const jobs = [
      { id: "nightly-report", name: "Nightly report", trigger: { type: "cron", expression: "30 2 * * *", timezone: "America/New_York" } },
      { id: "hourly-sync", name: "Hourly sync", trigger: { type: "cron", expression: "0 * * * *", timezone: "Europe/London" } },
      { id: "flaky-export", name: "Flaky export", trigger: { type: "interval", hours: 6 } },
    ];
    for (const job of jobs) {
      const path = job.id === "flaky-export" ? "/flaky?status=500" : `/ok?delay_ms=${job.id.length * 15}`;
      const res = await call("/v1/jobs", {
        method: "POST",
        body: JSON.stringify({
          ...job,
          target: { type: "http", url: `${receiver.url}${path}` },
          max_instances: 10,
          retry: { max_attempts: 1 },
        }),
      });
      expect(res.status).toBe(201);
    }
    const runIds: string[] = [];
    for (const job of jobs)
      for (let i = 0; i < 4; i++)
        runIds.push(((await (await call(`/v1/jobs/${job.id}/run`, { method: "POST" })).json()) as { id: string }).id);
    const tasks = Array.from({ length: 24 }, (_, i) => ({
      target: { type: "http", url: `${receiver.url}/${i % 8 === 7 ? "gone?status=404" : `ok?delay_ms=${20 + i * 15}`}` },
    }));
    const { items } = (await (await call("/v1/tasks/batch", { method: "POST", body: JSON.stringify({ tasks }) })).json()) as {
      items: { run: { id: string } }[];
    };
    runIds.push(...items.map((item) => item.run.id));
    const deadline = Date.now() + 60_000;
    // The local ticker records the first heartbeat a few seconds after start; show a live one.
    while (!((await (await call("/v1/scheduler")).json()) as { heartbeat_at: string | null }).heartbeat_at && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
    }
    for (;;) {
      const runs = await Promise.all(
        runIds.map(async (id) => ((await (await call(`/v1/runs/${id}`)).json()) as { status: string }).status),
      );
      if (runs.every((s) => ["succeeded", "failed", "dead"].includes(s))) break;
      if (Date.now() > deadline) throw new Error(`runs did not finish: ${runs.join(",")}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // A job adds its runs to the statistics within the hour, or when its own stats are asked for.
    for (const job of jobs) expect((await call(`/v1/jobs/${job.id}/stats`)).status).toBe(200);
  }

  beforeAll(async () => {
    [server, receiver, browser] = await Promise.all([startDevServer(), startReceiver(), launchChromium()]);
    await seed();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await receiver?.close();
  });

  it("shows what a person needs: job rows, numbers matching /v1/stats and charts drawn from the runs", async () => {
    const stats = (await (await call("/v1/stats")).json()) as Stats;
    const context = await browser.newContext({
      httpCredentials: { username: "admin", password: server.token },
      viewport: { width: 1360, height: 900 },
    });
    const page = await context.newPage();
    const outside: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(server.url)) outside.push(req.url());
    });
    const res = await page.goto(`${server.url}/dashboard`);
    expect(res?.status()).toBe(200);

    for (const id of ["nightly-report", "hourly-sync", "flaky-export"])
      await expect(page.locator(`tr[data-job="${id}"]`).count()).resolves.toBe(1);
    expect(await page.locator("#total-runs").textContent()).toBe(String(stats.overall.runs.total));
    expect(await page.locator("#success-rate").textContent()).toBe(`${((stats.overall.success_rate ?? 0) * 100).toFixed(1)}%`);
    const flaky = stats.jobs.find((j) => j.job_id === "flaky-export");
    expect(await page.locator('tr[data-job="flaky-export"] td.rate').textContent()).toBe(
      `${((flaky?.success_rate ?? 0) * 100).toFixed(1)}%`,
    );

    const p50 = await page.locator("#duration-trend path.line.p50").getAttribute("d");
    expect(p50).toMatch(/^M[\d.]+,[\d.]+/);
    expect(await page.locator("#status-mix rect.succeeded").count()).toBeGreaterThan(0);
    expect(await page.locator("#status-mix rect.dead").count()).toBeGreaterThan(0);
    expect(await page.locator("#failures tbody tr").count()).toBeGreaterThan(0);
    expect(await page.locator("#failures").textContent()).toContain("target answered 500");
    await page.screenshot({ path: join(screenshots, "dashboard.png"), fullPage: true });

    await page.locator('tr[data-job="hourly-sync"] button.pause').click();
    await page.waitForURL(/done=/);
    expect(await page.locator(".flash").textContent()).toContain("paused hourly-sync");
    expect(await page.locator('tr[data-job="hourly-sync"] .state').textContent()).toBe("paused");
    const job = (await (await call("/v1/jobs/hourly-sync")).json()) as { state: string };
    expect(job.state).toBe("paused");
    expect(outside).toEqual([]);
    await context.close();
  }, 120_000);

  it("serves an interactive API reference that lists every /v1 route, from a valid OpenAPI document", async () => {
    const spec = await (await fetch(`${server.url}/openapi.json`)).json();
    const result = await new Validator().validate(spec);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);

    const { version } = JSON.parse(readFileSync(join(swaggerUiDist, "package.json"), "utf8")) as { version: string };
    expect(SWAGGER_UI_CDN).toBe(`https://cdn.jsdelivr.net/npm/swagger-ui-dist@${version}`);
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    // This machine has no internet: the CDN's files come from the pinned
    // swagger-ui-dist package, and the browser checks them against the page's
    // integrity hashes, so a hash that does not match that version fails here.
    const cdnFiles: string[] = [];
    await page.route(`${SWAGGER_UI_CDN}/**`, async (route) => {
      const file = new URL(route.request().url()).pathname.split("/").pop() ?? "";
      cdnFiles.push(file);
      await route.fulfill({
        body: readFileSync(join(swaggerUiDist, file)),
        contentType: file.endsWith(".css") ? "text/css" : "text/javascript",
        headers: { "access-control-allow-origin": "*" },
      });
    });
    await page.goto(`${server.url}/docs`);
    await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
    expect(cdnFiles.sort()).toEqual(["swagger-ui-bundle.js", "swagger-ui.css"]);
    const paths = await page.locator(".opblock-summary-path").allTextContents();
    for (const path of ["/v1/tasks", "/v1/jobs", "/v1/runs", "/v1/scheduler", "/v1/triggers/preview", "/v1/stats"]) {
      expect(paths.map((p) => p.replace(/\u200b/g, ""))).toContain(path);
    }
    await page.screenshot({ path: join(screenshots, "docs.png") });
    await page.close();
  }, 60_000);

  it("still lists the routes when the CDN cannot be reached, and refuses a file that fails its integrity hash", async () => {
    const page = await browser.newPage();
    const blocked: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") blocked.push(message.text());
    });
    // A tampered copy: the browser must not run it.
    await page.route(`${SWAGGER_UI_CDN}/**`, (route) =>
      route.request().url().endsWith(".js")
        ? route.fulfill({
            body: "window.tampered = true;",
            contentType: "text/javascript",
            headers: { "access-control-allow-origin": "*" },
          })
        : route.abort("internetdisconnected"),
    );
    await page.goto(`${server.url}/docs`);
    await page.waitForLoadState("load");
    expect(await page.evaluate(() => (window as unknown as { tampered?: boolean }).tampered)).toBeUndefined();
    expect(blocked.join("\n")).toMatch(/integrity/i);
    const listed = await page.locator("#operations li code").allTextContents();
    expect(listed).toContain("POST /v1/tasks");
    expect(listed).toContain("GET /v1/runs/{id}/attempts");
    expect(await page.locator(".opblock").count()).toBe(0);
    await page.close();
  }, 60_000);
});
