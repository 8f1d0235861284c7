import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { jobFireRunId, newTaskRunId } from "../../src/ids";
import type { RunOwner } from "../../src/ledger/run-owner";
import { newRunRow } from "../../src/runs/new-run";
import type { RunRow } from "../../src/runs/store";
import { jobsDeletedAfterEach } from "../helpers/faults";
import { jobStub } from "../helpers/jobs";
import { runsOfOwnerOf } from "../helpers/owners";
import { receiverUrl } from "../helpers/receiver";

// History is bounded per owner: each owner (a job's JobObject, a task shard) deletes its own
// runs older than the retention window (RUN_RETENTION_DAYS, 30 by default) as part of its
// normal work; there is no global sweep. What one owner keeps is its own rate times the window.

const jobs = jobsDeletedAfterEach("retain");
const DAY = 86_400_000;
const RETENTION_DAYS = 30;

/**
 * Test setup only: the owner's runs as a busy owner would have written them, one per `every` ms
 * from `days` days ago until `untilDays` days ago.
 */
async function seedRuns(
  stub: DurableObjectStub,
  key: string,
  rows: (at: number) => RunRow,
  days: number,
  every: number,
  untilDays = 0,
): Promise<number> {
  return runInDurableObject(stub, (instance: unknown) => {
    const runs = (instance as { runs(key: string): RunOwner }).runs(key);
    let written = 0;
    for (let at = Date.now() - days * DAY; at < Date.now() - untilDays * DAY; at += every) {
      runs.ledger.insert(rows(at));
      written++;
    }
    return written;
  });
}

/** Test setup only: retention last ran long enough ago to run again now (it runs at most hourly). */
async function retentionDueAgain(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => state.storage.kv.delete("runs:retained_at"));
}

const finished = (row: RunRow, at: number): RunRow => ({
  ...row,
  status: "succeeded",
  attempt: 1,
  startedAt: at,
  finishedAt: at + 50,
  durationMs: 50,
});

describe("each owner deletes its own runs past the retention window", () => {
  it("a job firing every 10 minutes for 40 days keeps 30 days of runs; its alarm deletes the older ones and keeps unfinished ones", async () => {
    const { url } = receiverUrl();
    const job = await jobs.yearly(url);
    const stub = jobStub(job.id) as unknown as DurableObjectStub;
    const every = 10 * 60_000;
    /** The run of the job's fire at `at`, waiting. */
    const fireRun = (at: number) =>
      newRunRow(
        {
          target: { type: "http", url, method: "POST" },
          dueAt: at,
          priority: "default",
          retry: undefined,
          timeoutSeconds: 30,
          requestId: null,
          jobId: job.id,
          fireSlot: at,
        },
        jobFireRunId(job.id, at),
        at,
      );
    const written = await seedRuns(stub, job.id, (at) => finished(fireRun(at), at), 40, every);
    // One run 35 days old never finished (say it retries for a long time): it stays.
    const old = Date.now() - 35 * DAY + 1;
    await seedRuns(stub, job.id, (at) => fireRun(at), 35, 40 * DAY);
    expect((await runsOfOwnerOf(jobFireRunId(job.id, old))).length).toBe(written + 1);

    await retentionDueAgain(stub);
    await runDurableObjectAlarm(jobStub(job.id));

    const kept = await runsOfOwnerOf(jobFireRunId(job.id, old));
    const cutoff = Date.now() - RETENTION_DAYS * DAY;
    const finishedKept = kept.filter((r) => r.finishedAt !== null);
    expect(finishedKept.every((r) => r.createdAt >= cutoff - 60_000)).toBe(true);
    // Bounded by its own rate times the window: 30 days of one run per 10 minutes.
    expect(finishedKept.length).toBeLessThanOrEqual((RETENTION_DAYS * DAY) / every + 1);
    expect(finishedKept.length).toBeGreaterThanOrEqual((RETENTION_DAYS * DAY) / every - 2);
    expect(kept.filter((r) => r.finishedAt === null)).toHaveLength(1);
  });

  it("a task shard drives itself through simulated days: each day's retention keeps it at one window of history", async () => {
    const shard = 0;
    const stub = env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${shard}`)) as unknown as DurableObjectStub;
    const every = 60 * 60_000;
    const task = (at: number) =>
      finished(
        newRunRow(
          {
            target: { type: "http", url: "https://example.com/t", method: "POST" },
            dueAt: at,
            priority: "default",
            retry: undefined,
            timeoutSeconds: 30,
            requestId: null,
          },
          newTaskRunId(shard, at),
          at,
        ),
        at,
      );
    // Sixty days of a task an hour, arriving ten days at a time; the shard's retention runs after each.
    const counts: number[] = [];
    for (let day = 60; day > 0; day -= 10) {
      await seedRuns(stub, String(shard), task, day, every, day - 10);
      await retentionDueAgain(stub);
      await env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${shard}`)).ensureArmed(String(shard));
      const all = (await env.TASK_SHARD.get(env.TASK_SHARD.idFromName(`shard:${shard}`)).listRuns(String(shard), {
        limit: 100_000,
      })) as unknown as RunRow[];
      counts.push(all.length);
      expect(all.every((r) => r.createdAt >= Date.now() - RETENTION_DAYS * DAY - 60_000)).toBe(true);
    }
    // Never more than one window of an hourly task, however long the shard has been busy.
    for (const n of counts) expect(n).toBeLessThanOrEqual(RETENTION_DAYS * 24 + 2);
  });
});
