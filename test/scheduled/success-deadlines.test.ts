import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import { cronTick } from "../helpers/faults";
import { call } from "../helpers/http";
import { createJob, deleteJob } from "../helpers/jobs";
import { eventually, received, receiverUrl } from "../helpers/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // the test environment's WEBHOOK_SIGNING_SECRET
const MINUTE = 60_000;
const WINDOW_S = 3600;

const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) await Promise.all(created.splice(0, 15).map(deleteJob));
}, 120_000);

/** The deadline alerts the receiver got, verified as a Standard Webhooks receiver would. */
async function deadlineAlerts(prefix: string): Promise<string[]> {
  return (await received(prefix))
    .map((r) => new Webhook(SECRET).verify(r.body, r.headers) as { event: string; job_id: string })
    .filter((b) => b.event === "deadline_missed")
    .map((b) => b.job_id);
}

describe("scheduled: the dead-man's switch", () => {
  it("two heartbeat ticks tell each of 150 overdue jobs once, earliest deadline first, not the same 100 twice", async () => {
    const alerts = receiverUrl();
    const stamp = Date.now();
    const ids = Array.from({ length: 150 }, (_, i) => `overdue-${stamp}-${String(i).padStart(3, "0")}`);
    created.push(...ids);
    for (let i = 0; i < ids.length; i += 15)
      await Promise.all(
        ids.slice(i, i + 15).map((id) =>
          createJob({
            id,
            trigger: { type: "cron", expression: "0 0 1 1 *" },
            target: { type: "http", url: "https://example.com/never" },
            alerts: { target: { type: "http", url: alerts.url }, expect_success_within: WINDOW_S },
          }),
        ),
      );
    // Setup: every deadline passed (as if no run succeeded for hours), the first job's longest ago.
    const now = Date.now();
    const missed = new Map(ids.map((id, i) => [id, now - 2 * 3_600_000 + i * 1000]));
    await env.DB.batch(ids.map((id) => env.DB.prepare("UPDATE jobs SET success_deadline_at = ? WHERE id = ?").bind(missed.get(id), id)));

    const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
    await cronTick(env, minute);
    const firstTick = await eventually(
      async () => {
        const got = await deadlineAlerts(alerts.prefix);
        return got.length >= 100 && got;
      },
      20_000,
      "the first tick's alerts",
    );
    expect(new Set(firstTick)).toEqual(new Set(ids.slice(0, 100))); // the earliest deadlines first
    await cronTick(env, minute + MINUTE);
    await eventually(async () => (await deadlineAlerts(alerts.prefix)).length >= 150, 20_000, "the second tick's alerts");
    await cronTick(env, minute + 2 * MINUTE); // every job has been told: nothing more to say
    await new Promise((r) => setTimeout(r, 500));

    const told = await deadlineAlerts(alerts.prefix);
    expect(told).toHaveLength(150);
    expect(new Set(told)).toEqual(new Set(ids));
    // Each told job left the overdue range until it is due again; the deadline it missed is kept.
    const { results } = await env.DB.prepare(
      `SELECT id, success_deadline_at AS deadline, deadline_missed_at AS missed FROM jobs WHERE id LIKE 'overdue-${stamp}-%'`,
    ).all<{ id: string; deadline: number; missed: number }>();
    for (const row of results) {
      expect(row.deadline).toBeGreaterThan(now + (WINDOW_S - 120) * 1000);
      expect(row.missed).toBe(missed.get(row.id));
    }
    // /readyz still lists jobs past their deadline.
    const ready = await (await call("/readyz?verbose=1")).json<{ checks: Record<string, { status: string; output?: string }[]> }>();
    expect(ready.checks["jobs:successDeadlines"]?.[0]?.status).toBe("warn");
  }, 120_000);
});
