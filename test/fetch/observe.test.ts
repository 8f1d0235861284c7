import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { escapeLabel, MetricsWriter } from "../../src/observe/prometheus";
import type { RunRow } from "../../src/runs/store";
import { api, call } from "../helpers/http";
import { createJob, deleteJob, jobStub } from "../helpers/jobs";
import { changeOwnedRun, flushStats } from "../helpers/owners";

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

/** Creates a job run through the API (due in an hour so nothing delivers it) and finishes it after `durationMs`, through its owner, as the executor does. */
async function finishedRun(jobId: string, durationMs: number, status: "succeeded" | "failed" | "dead") {
  const res = await api(`/v1/jobs/${jobId}/run`, { method: "POST" });
  const { id } = await res.json<{ id: string }>();
  const now = Date.now();
  const stub = jobStub(jobId);
  // Test setup: the run was due `durationMs` ago, when its attempt started.
  await changeOwnedRun(id, { availableAt: now - durationMs });
  const [claimed] = (await stub.claimRuns(jobId, [{ id, attempt: 1, now: now - durationMs }])) as unknown as (RunRow | null)[];
  if (!claimed) throw new Error("the run could not be claimed");
  const outcome = status === "succeeded" ? { status, result: null } : { status, error: { message: "x" } };
  const [finished] = (await stub.finishRuns(jobId, [{ id, attempt: 1, outcome, now }])) as unknown as (RunRow | null)[];
  expect(finished).toBeTruthy();
}

async function jobWithRuns(id: string, durations: number[], failures = 0) {
  // max_instances high enough that run-now never refuses; the target is never called.
  await createJob({
    id,
    trigger: { type: "cron", expression: "0 0 1 1 *" },
    target: { type: "http", url: "https://example.com/never" },
    max_instances: 100,
    retry: { max_attempts: 1 },
  });
  for (const ms of durations) await finishedRun(id, ms, "succeeded");
  for (let i = 0; i < failures; i++) await finishedRun(id, 5, "failed");
}

describe("GET /v1/stats and /v1/jobs/:id/stats", () => {
  it("reports counts, success rate and percentiles that match known durations", async () => {
    const id = `stats-${Date.now()}`;
    // 100 runs of 10, 20, ... 1000 ms: true p50 500 ms, p95 950 ms, mean 505 ms.
    await jobWithRuns(
      id,
      Array.from({ length: 100 }, (_, i) => (i + 1) * 10),
      25,
    );
    try {
      const res = await api(`/v1/jobs/${id}/stats`);
      expect(res.status).toBe(200);
      const stats = await res.json<{
        runs: { total: number; succeeded: number; failed: number };
        success_rate: number;
        duration_ms: { mean: number; p50: number; p95: number };
        last_run: { status: string };
      }>();
      expect(stats.runs).toMatchObject({ total: 125, succeeded: 100, failed: 25 });
      expect(stats.success_rate).toBe(0.8);
      // Mean over all finished attempts (the 25 failures took 5 ms each).
      expect(stats.duration_ms.mean).toBeCloseTo((50_500 + 125) / 125, 0);
      expect(stats.duration_ms.p50).toBeGreaterThanOrEqual(250);
      expect(stats.duration_ms.p50).toBeLessThanOrEqual(500);
      expect(stats.duration_ms.p95).toBeGreaterThanOrEqual(900);
      expect(stats.duration_ms.p95).toBeLessThanOrEqual(1000);
      expect(stats.last_run.status).toBe("failed");
      const overall = await (await api("/v1/stats")).json<{
        jobs: { job_id: string; runs: { total: number } }[];
        overall: { runs: { total: number } };
      }>();
      expect(overall.jobs.find((j) => j.job_id === id)?.runs.total).toBe(125);
      expect(overall.overall.runs.total).toBeGreaterThanOrEqual(125);
    } finally {
      await deleteJob(id);
    }
  }, 30_000);

  it("a window after the runs counts nothing", async () => {
    const id = `stats-window-${Date.now()}`;
    await jobWithRuns(id, [10]);
    try {
      const later = new Date(Date.now() + 2 * 3_600_000).toISOString();
      const stats = await (await api(`/v1/jobs/${id}/stats?since=${later}`)).json<{ runs: { total: number } }>();
      expect(stats.runs.total).toBe(0);
    } finally {
      await deleteJob(id);
    }
  });
});

describe("GET /metrics", () => {
  it("needs the API token", async () => {
    expect((await call("/metrics")).status).toBe(401);
  });

  it("parses as Prometheus text and matches the runs that were created", async () => {
    const id = `metrics-${Date.now()}`;
    await jobWithRuns(id, [20, 200, 2000], 1);
    // Owners add their ended runs to the statistics in batches; this scrape reads them now.
    await flushStats([id]);
    try {
      const res = await api("/metrics");
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      const text = await res.text();
      const families = parsePrometheusTextFormat(text) as Family[];
      const byName = new Map(families.map((f) => [f.name, f]));
      const runs = byName.get("taskflare_runs_total");
      expect(runs?.type).toBe("COUNTER");
      const value = (outcome: string) => runs?.metrics.find((m) => m.labels?.job_id === id && m.labels?.outcome === outcome)?.value;
      expect(value("succeeded")).toBe("3");
      expect(value("failed")).toBe("1");
      expect(byName.get("taskflare_run_duration_seconds")?.type).toBe("HISTOGRAM");
      // This parser folds labelled histogram series together, so read this job's series from the validated text.
      const sample = (suffix: string, le?: string) => {
        const labels = le === undefined ? `{job_id="${id}"}` : `{job_id="${id}",le="${le}"}`;
        return text
          .split("\n")
          .find((line) => line.startsWith(`taskflare_run_duration_seconds_${suffix}${labels} `))
          ?.split(" ")[1];
      };
      expect(sample("count")).toBe("4");
      expect(sample("bucket", "0.025")).toBe("2"); // 5 ms and 20 ms
      expect(sample("bucket", "0.25")).toBe("3");
      expect(sample("bucket", "2.5")).toBe("4");
      expect(sample("bucket", "+Inf")).toBe("4");
      expect(Number(sample("sum"))).toBeCloseTo(2.225, 3);
      expect(byName.get("taskflare_jobs")?.metrics.find((m) => m.labels?.state === "active")).toBeDefined();
      for (const name of ["taskflare_runs_in_flight", "taskflare_jobs_late", "taskflare_heartbeat_age_seconds"])
        expect(byName.has(name)).toBe(true);
    } finally {
      await deleteJob(id);
    }
  });

  it("names a job's label job_id: no series carries the label `job`, which Prometheus reserves for the scrape target", async () => {
    const id = `metrics-label-${Date.now()}`;
    await jobWithRuns(id, [20], 1);
    await flushStats([id]);
    try {
      const families = parsePrometheusTextFormat(await (await api("/metrics")).text()) as Family[];
      const labelNames = new Set(families.flatMap((f) => f.metrics.flatMap((m) => Object.keys(m.labels ?? {}))));
      expect(labelNames).toContain("job_id");
      expect(labelNames).not.toContain("job");
      const runs = families.find((f) => f.name === "taskflare_runs_total");
      expect(runs?.metrics.filter((m) => m.labels?.job_id === id).map((m) => m.labels?.outcome)).toContain("succeeded");
    } finally {
      await deleteJob(id);
    }
  });

  it("escapes label values so a parser reads them back unchanged", () => {
    const nasty = 'a "quoted" \\ back\\slash\nnew line';
    const text = new MetricsWriter().family("x_total", "counter", "test").sample("x_total", { job_id: nasty }, 1).toString();
    expect(text).toContain(escapeLabel(nasty));
    const [family] = parsePrometheusTextFormat(text) as Family[];
    expect(family?.metrics[0]?.labels?.job_id).toBe(nasty);
  });
});
