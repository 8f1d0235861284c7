import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { runScheduled } from "../helpers/entry";
import { api, type ErrorBody } from "../helpers/http";
import { backdateNextFire, createJob, deleteJob, type JobBody, jobRuns, jobStub } from "../helpers/jobs";
import { tasksWithKey } from "../helpers/owners";
import { eventually, received, receiverUrl } from "../helpers/receiver";

const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) await deleteJob(created.pop() ?? "");
});
let counter = 0;
const newJobId = () => {
  const id = `job-${Date.now()}-${counter++}`;
  created.push(id);
  return id;
};
const farTarget = () => ({ type: "http", url: receiverUrl().url });

describe("jobs API", () => {
  it("creates a cron job with its next five fire times in its time zone", async () => {
    const job = await createJob({
      id: newJobId(),
      trigger: { type: "cron", expression: "0 30 2 * * *", timezone: "Asia/Taipei" },
      target: farTarget(),
    });
    expect(job.state).toBe("active");
    expect(job.version).toBe(1);
    expect(job.next_run_times).toHaveLength(5);
    for (const fire of job.next_run_times ?? []) {
      expect(fire.local.endsWith("T02:30:00")).toBe(true);
      expect(fire.utc_offset).toBe("+08:00");
    }
    expect(job.next_run_at).toBe(job.next_run_times?.[0]?.at);
  });

  it("refuses a second job with the same id with 409", async () => {
    const id = newJobId();
    await createJob({ id, trigger: { type: "cron", expression: "0 0 * * *" }, target: farTarget() });
    const res = await api("/v1/jobs", {
      method: "POST",
      json: { id, trigger: { type: "cron", expression: "0 0 * * *" }, target: farTarget() },
    });
    expect(res.status).toBe(409);
    expect((await res.json<ErrorBody>()).error.code).toBe("conflict");
  });

  it("PUT creates (201) and then replaces (200) with a new version", async () => {
    const id = newJobId();
    const first = await api(`/v1/jobs/${id}`, {
      method: "PUT",
      json: { trigger: { type: "cron", expression: "0 0 * * *" }, target: farTarget() },
    });
    expect(first.status).toBe(201);
    const second = await api(`/v1/jobs/${id}`, {
      method: "PUT",
      json: { trigger: { type: "cron", expression: "0 12 * * *" }, target: farTarget() },
    });
    expect(second.status).toBe(200);
    const body = await second.json<JobBody>();
    expect(body.version).toBe(2);
    expect(body.next_run_at?.slice(11, 19)).toBe("12:00:00");
  });

  it("PATCH reschedules: a new trigger moves next_run_at and bumps the version", async () => {
    const job = await createJob({ id: newJobId(), trigger: { type: "cron", expression: "0 0 1 1 *" }, target: farTarget() });
    const res = await api(`/v1/jobs/${job.id}`, { method: "PATCH", json: { trigger: { type: "cron", expression: "15 10 * * *" } } });
    expect(res.status).toBe(200);
    const body = await res.json<JobBody>();
    expect(body.version).toBe(2);
    expect(body.next_run_at?.slice(11, 19)).toBe("10:15:00");
    expect((await jobStub(job.id).inspect()).alarm).toBe(Date.parse(body.next_run_at ?? ""));
  });

  it("accepts a step after a single number, 5/10, as Quartz and croniter read it: fires at minutes 5, 15, 25 ..., and keeps the expression as typed", async () => {
    const res = await api("/v1/jobs", {
      method: "POST",
      json: { id: newJobId(), trigger: { type: "cron", expression: "5/10 * * * *" }, target: farTarget() },
    });

    expect(res.status).toBe(201);
    const job = await res.json<JobBody & { trigger: { expression: string } }>();
    expect(job.trigger.expression).toBe("5/10 * * * *");
    const fires = (job.next_run_times ?? []).map((f) => Date.parse(f.at));
    expect(fires).toHaveLength(5);
    for (const at of fires) expect([new Date(at).getUTCMinutes() % 10, new Date(at).getUTCSeconds()]).toEqual([5, 0]);
    for (let i = 1; i < fires.length; i++) expect((fires[i] ?? 0) - (fires[i - 1] ?? 0)).toBe(10 * 60_000);
    expect((await jobStub(job.id).inspect()).alarm).toBe(fires[0]);
  });

  it("answers an invalid cron expression, time zone or date with a 400 that says what is wrong", async () => {
    const cases: [unknown, RegExp][] = [
      [{ type: "cron", expression: "61 * * * *" }, /61|minute|range/i],
      [{ type: "cron", expression: "0 0 * * *", timezone: "Mars/Olympus" }, /Mars\/Olympus/],
      [{ type: "date", run_at: "2027-02-30T00:00:00Z" }, /2027-02-30|date/i],
    ];
    for (const [trigger, message] of cases) {
      const res = await api("/v1/jobs", { method: "POST", json: { trigger, target: farTarget() } });
      expect(res.status).toBe(400);
      expect(JSON.stringify(await res.json())).toMatch(message);
    }
  });

  it("lists jobs with cursor pagination", async () => {
    const prefix = `page-${Date.now()}`;
    for (let i = 0; i < 3; i++) {
      created.push(`${prefix}-${i}`);
      await createJob({ id: `${prefix}-${i}`, trigger: { type: "cron", expression: "0 0 * * *" }, target: farTarget(), tags: [prefix] });
    }
    const first = await (await api(`/v1/jobs?limit=2&tag=${prefix}`)).json<{ items: JobBody[]; next_cursor: string }>();
    expect(first.items.map((j) => j.id)).toEqual([`${prefix}-0`, `${prefix}-1`]);
    const second = await (await api(`/v1/jobs?limit=2&tag=${prefix}&cursor=${first.next_cursor}`)).json<{
      items: JobBody[];
      next_cursor: string | null;
    }>();
    expect(second.items.map((j) => j.id)).toEqual([`${prefix}-2`]);
    expect(second.next_cursor).toBeNull();
  });

  it("shows next_run_at as the trigger's next fire (not D1's later promise) and last_run_at as the latest run's fire: in GET at once, in the list once the job's statistics are flushed", async () => {
    const id = newJobId();
    await createJob({
      id,
      trigger: { type: "interval", seconds: 60, start_date: "2020-01-01T00:00:00Z" },
      target: farTarget(),
      misfire_grace_time: 3600,
    });
    const nextMinute = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 60_000).toISOString();
    const promised = await env.DB.prepare("SELECT next_run_at FROM jobs WHERE id = ?").bind(id).first<number>("next_run_at");
    expect(promised).toBeGreaterThan(Date.now() + 29 * 60_000);
    const slot = Math.floor(Date.now() / 60_000) * 60_000;
    await backdateNextFire(id, slot);
    await runDurableObjectAlarm(jobStub(id));

    const one = await (await api(`/v1/jobs/${id}`)).json<JobBody & { last_run_at: string | null }>();
    // The list reads D1, which hears of a job's runs with its statistics (the stats route asks for them now).
    const stats = await (await api(`/v1/jobs/${id}/stats`)).json<{ next_run_at: string | null }>();
    const listed = (
      await (await api(`/v1/jobs?cursor=${id.slice(0, -1)}&limit=200`)).json<{ items: (JobBody & { last_run_at: string | null })[] }>()
    ).items.find((j) => j.id === id);
    // A minute boundary may pass between the reads: each shows the first fire after its own now.
    const upcoming = [nextMinute, new Date(Date.parse(nextMinute) + 60_000).toISOString()];
    for (const shown of [one.next_run_at, listed?.next_run_at, stats.next_run_at]) expect(upcoming).toContain(shown);
    expect(one.next_run_at).toBe(one.next_run_times?.[0]?.at);
    expect(one.last_run_at).toBe(new Date(slot).toISOString());
    expect(listed?.last_run_at).toBe(new Date(slot).toISOString());
  });

  it("GET of an unknown job is a JSON 404", async () => {
    const res = await api("/v1/jobs/no-such-job");
    expect(res.status).toBe(404);
  });
});

describe("a job's alerts target", () => {
  const privateTargets = ["http://127.0.0.1/", "http://169.254.169.254/latest/meta-data"];
  const cron = { type: "cron", expression: "0 0 * * *" };
  const alertsAt = (url: string) => ({ target: { type: "http", url }, on_dead: true });

  /** The paths the 400's details name. */
  async function refusedPaths(res: Response): Promise<string[]> {
    expect(res.status).toBe(400);
    const body = await res.json<ErrorBody>();
    expect(body.error.code).toBe("validation_failed");
    return (body.error.details as { path: string }[]).map((d) => d.path);
  }

  it.each(privateTargets)("POST refuses an alerts target at %s with a 400 naming alerts.target.url", async (url) => {
    const id = newJobId();
    const res = await api("/v1/jobs", { method: "POST", json: { id, trigger: cron, target: farTarget(), alerts: alertsAt(url) } });
    expect(await refusedPaths(res)).toEqual(["alerts.target.url"]);
    expect((await api(`/v1/jobs/${id}`)).status).toBe(404);
  });

  it.each(privateTargets)("PUT and PATCH refuse an alerts target at %s and leave the job as it was", async (url) => {
    const id = newJobId();
    const put = await api(`/v1/jobs/${id}`, { method: "PUT", json: { trigger: cron, target: farTarget(), alerts: alertsAt(url) } });
    expect(await refusedPaths(put)).toEqual(["alerts.target.url"]);
    await createJob({ id, trigger: cron, target: farTarget() });
    const patch = await api(`/v1/jobs/${id}`, { method: "PATCH", json: { alerts: alertsAt(url) } });
    expect(await refusedPaths(patch)).toEqual(["alerts.target.url"]);
    const job = await (await api(`/v1/jobs/${id}`)).json<JobBody & { alerts?: unknown }>();
    expect([job.version, job.alerts]).toEqual([1, undefined]);
  });
});

describe("an interval job in real time", () => {
  it("fires every second through the executor, and stops when deleted", async () => {
    const { url, prefix } = receiverUrl();
    const id = newJobId();
    await createJob({ id, trigger: { type: "interval", seconds: 1 }, target: { type: "http", url } });
    await eventually(async () => (await received(prefix)).length >= 3, 8_000, "three fires");
    const runs = await jobRuns(id);
    const slots = runs.map((r) => r.fire_slot).filter((s): s is number => s !== null);
    for (let i = 1; i < slots.length; i++) expect((slots[i] ?? 0) - (slots[i - 1] ?? 0)).toBe(1000);
    expect((await api(`/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(204);
    created.pop();
    const count = (await received(prefix)).length;
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await received(prefix)).length).toBeLessThanOrEqual(count + 1);
    expect((await jobStub(id).inspect()).alarm).toBeNull();
  }, 20_000);
});

describe("POST /v1/jobs/:id/run", () => {
  it("with max_instances 1, many concurrent calls start exactly one run", async () => {
    const { url, prefix } = receiverUrl("delay_ms=1500");
    const job = await createJob({
      id: newJobId(),
      trigger: { type: "cron", expression: "0 0 1 1 *" },
      target: { type: "http", url },
      max_instances: 1,
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => api(`/v1/jobs/${job.id}/run`, { method: "POST" })));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
    expect(await jobRuns(job.id)).toHaveLength(1);
    await eventually(async () => (await jobRuns(job.id))[0]?.status === "succeeded", 8_000, "the run to finish");
    expect(await received(prefix)).toHaveLength(1);
    // The finished run released its lease: the next run-now is accepted.
    await eventually(async () => (await jobStub(job.id).inspect()).leases.length === 0, 3_000, "lease release");
    expect((await api(`/v1/jobs/${job.id}/run`, { method: "POST" })).status).toBe(202);
  });
});

describe("DELETE /v1/jobs/:id", () => {
  it("deletes the job's runs with it and forgets its alarm; a running attempt still makes its call, and D1's pending runs of the job are cancelled", async () => {
    const { url, prefix } = receiverUrl("delay_ms=800");
    const job = await createJob({
      id: newJobId(),
      trigger: { type: "cron", expression: "0 0 1 1 *" },
      target: { type: "http", url },
      max_instances: 2,
    });
    const running = await (await api(`/v1/jobs/${job.id}/run`, { method: "POST" })).json<{ id: string }>();
    await eventually(async () => (await jobRuns(job.id))[0]?.status === "running", 5_000, "the run to start");
    // A run D1 kept for the job from before runs moved to their owners.
    await env.DB.prepare(
      "INSERT INTO runs (id, job_id, status, target, timeout, scheduled_for, available_at) VALUES (?, ?, 'scheduled', '{}', 30, ?, ?)",
    )
      .bind(`run_pending_${job.id}`, job.id, Date.now() + 3_600_000, Date.now() + 3_600_000)
      .run();
    expect((await api(`/v1/jobs/${job.id}`, { method: "DELETE" })).status).toBe(204);
    created.pop();

    await eventually(async () => (await received(prefix)).length === 1, 5_000, "the running attempt's call");
    const legacy = await env.DB.prepare("SELECT status FROM runs WHERE id = ?").bind(`run_pending_${job.id}`).first<{ status: string }>();
    expect(legacy?.status).toBe("cancelled");
    expect((await api(`/v1/runs/${running.id}`)).status).toBe(404);
    expect((await api(`/v1/jobs/${job.id}`)).status).toBe(404);
    expect(await jobStub(job.id).inspect()).toMatchObject({ jobId: null, alarm: null });
  });
});

describe("heartbeat (scheduled entry point)", () => {
  it("re-arms a job whose alarm was lost", async () => {
    const job = await createJob({ id: newJobId(), trigger: { type: "cron", expression: "0 0 1 1 *" }, target: farTarget() });
    const stub = jobStub(job.id);
    await stub.inspect();
    const { runInDurableObject } = await import("cloudflare:test");
    await runInDurableObject(stub, (_instance, state) => state.storage.deleteAlarm());
    await env.DB.prepare("UPDATE jobs SET next_run_at = ? WHERE id = ?")
      .bind(Date.now() - 10 * 60_000, job.id)
      .run();
    expect((await stub.inspect()).alarm).toBeNull();
    await runScheduled(Date.now());
    expect((await stub.inspect()).alarm).toBe(Date.parse(job.next_run_at ?? ""));
  });

  it("binds a static handler to its Cron Trigger, once per tick even when the trigger fires twice", async () => {
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    await runScheduled(minute, "17 3 * * *");
    await runScheduled(minute, "17 3 * * *");
    const runs = await tasksWithKey(`static:17 3 * * *:${minute}`);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ jobId: "static:17 3 * * *", scheduledFor: minute });
  });
});

describe("POST /v1/triggers/preview", () => {
  it("shows both DST nights of 30 2 * * * in America/New_York with notes", async () => {
    const res = await api("/v1/triggers/preview", {
      method: "POST",
      json: { trigger: { type: "cron", expression: "30 2 * * *", timezone: "America/New_York" }, after: "2024-03-09T12:00:00Z", count: 2 },
    });
    expect(res.status).toBe(200);
    const body = await res.json<{ items: { at: string; local: string; utc_offset: string; note?: string }[] }>();
    expect(body.items[0]?.at).toBe("2024-03-10T07:00:00.000Z");
    expect(body.items[0]?.local).toBe("2024-03-10T03:00:00");
    expect(body.items[0]?.note).toMatch(/does not exist/);
    expect(body.items[1]?.local).toBe("2024-03-11T02:30:00");
    const fall = await api("/v1/triggers/preview", {
      method: "POST",
      json: { trigger: { type: "cron", expression: "30 1 * * *", timezone: "America/New_York" }, after: "2024-11-02T12:00:00Z", count: 1 },
    });
    const fallBody = await fall.json<{ items: { at: string; note?: string }[] }>();
    expect(fallBody.items[0]?.at).toBe("2024-11-03T05:30:00.000Z");
    expect(fallBody.items[0]?.note).toMatch(/first occurrence/);
  });

  it("refuses a count over 100", async () => {
    const res = await api("/v1/triggers/preview", {
      method: "POST",
      json: { trigger: { type: "cron", expression: "* * * * *" }, count: 101 },
    });
    expect(res.status).toBe(400);
  });
});
