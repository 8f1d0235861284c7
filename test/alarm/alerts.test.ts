import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import { runScheduled } from "../helpers/entry";
import { api, call } from "../helpers/http";
import { createJob, deleteJob } from "../helpers/jobs";
import { eventually, type ReceivedRequest, received, receiverUrl } from "../helpers/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // the test environment's WEBHOOK_SIGNING_SECRET
const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) await deleteJob(created.pop() ?? "");
});

interface AlertBody {
  event: string;
  job_id: string;
  run_id: string | null;
  recovered?: string[];
}

/** Alerts the receiver got, each verified as a Standard Webhooks receiver would. */
async function alertsAt(prefix: string): Promise<AlertBody[]> {
  const got: ReceivedRequest[] = await received(prefix);
  return got.map((r) => new Webhook(SECRET).verify(r.body, r.headers) as AlertBody);
}

async function runNowAndSettle(id: string): Promise<string> {
  const run = await (await api(`/v1/jobs/${id}/run`, { method: "POST" })).json<{ id: string }>();
  return eventually(
    async () => {
      const r = await (await api(`/v1/runs/${run.id}`)).json<{ status: string }>();
      return ["succeeded", "failed", "dead"].includes(r.status) ? r.status : undefined;
    },
    10_000,
    "the run to finish",
  );
}

describe("job alerts", () => {
  it("alert once per incident and once on recovery, signed like every outbound request", async () => {
    const id = `alerting-${Date.now()}`;
    created.push(id);
    const failing = receiverUrl("status=500");
    const alerts = receiverUrl();
    await createJob({
      id,
      trigger: { type: "cron", expression: "0 0 1 1 *" },
      target: { type: "http", url: failing.url },
      retry: { max_attempts: 1 },
      max_instances: 5,
      alerts: { target: { type: "http", url: alerts.url }, on_dead: true, after_consecutive_failures: 2 },
    });
    for (let i = 0; i < 3; i++) expect(await runNowAndSettle(id)).toBe("dead");
    await eventually(async () => (await received(alerts.prefix)).length >= 2, 10_000, "two alerts");
    await api(`/v1/jobs/${id}`, { method: "PATCH", json: { target: { type: "http", url: receiverUrl().url } } });
    expect(await runNowAndSettle(id)).toBe("succeeded");
    await expect(runNowAndSettle(id)).resolves.toBe("succeeded");
    await eventually(async () => (await received(alerts.prefix)).length >= 3, 10_000, "the recovery alert");
    await new Promise((r) => setTimeout(r, 300));
    const bodies = await alertsAt(alerts.prefix);
    expect(bodies.map((b) => b.event).sort()).toEqual(["consecutive_failures", "recovered", "run_dead"]);
    expect(bodies.find((b) => b.event === "recovered")?.recovered?.sort()).toEqual(["consecutive_failures", "run_dead"]);
    expect(bodies.every((b) => b.job_id === id)).toBe(true);
  });

  it("the heartbeat raises a deadline alert when no run succeeded within expect_success_within, once", async () => {
    const id = `deadline-${Date.now()}`;
    created.push(id);
    const alerts = receiverUrl();
    await createJob({
      id,
      trigger: { type: "cron", expression: "0 0 1 1 *" },
      target: { type: "http", url: receiverUrl().url },
      alerts: { target: { type: "http", url: alerts.url }, expect_success_within: 3600 },
    });
    const ready = await (await call("/readyz?verbose=1")).json<{ checks: Record<string, { status: string; output?: string }[]> }>();
    expect(ready.checks["jobs:successDeadlines"]?.[0]?.output ?? "").not.toContain(id);
    // Setup: the deadline passes (as if an hour went by without a success).
    await env.DB.prepare("UPDATE jobs SET success_deadline_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, id)
      .run();
    await runScheduled(Date.now());
    await runScheduled(Date.now() + 60_000);
    await eventually(async () => (await received(alerts.prefix)).length >= 1, 10_000, "the deadline alert");
    await new Promise((r) => setTimeout(r, 300));
    const bodies = await alertsAt(alerts.prefix);
    expect(bodies.map((b) => b.event)).toEqual(["deadline_missed"]);
    const verbose = await (await call("/readyz?verbose=1")).json<{
      status: string;
      checks: Record<string, { status: string; output?: string }[]>;
    }>();
    expect(verbose.checks["jobs:successDeadlines"]?.[0]?.status).toBe("warn");
    expect(verbose.checks["jobs:successDeadlines"]?.[0]?.output).toContain(id);
    // A success moves the deadline forward and recovers the incident.
    expect(await runNowAndSettle(id)).toBe("succeeded");
    await eventually(async () => (await received(alerts.prefix)).length >= 2, 10_000, "the recovery alert");
    const deadline = await env.DB.prepare("SELECT success_deadline_at AS d FROM jobs WHERE id = ?").bind(id).first<{ d: number }>();
    expect(deadline?.d).toBeGreaterThan(Date.now() + 3500_000);
  });
});
