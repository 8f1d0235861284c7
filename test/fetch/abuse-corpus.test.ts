import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AbuseCase, abuseCases, describeFailure, mapBounded, type Outcome, type Placeholders, runCase } from "../helpers/abuse";
import { api } from "../helpers/http";

// Every hostile request of test/corpora/abuse-corpus.json goes through the
// Worker's fetch entry point; each category's failures are one assertion.
const CONCURRENCY = 20;
const SHOWN = 20;
const RUN = `r${Date.now().toString(36)}`;
const placeholders: Placeholders = { run: RUN, fixture: `abuse-${RUN}-fixture` };
const categories = [...new Set(abuseCases.map((c) => c.category))];
const outcomes: Outcome[] = [];

async function createFixture(): Promise<void> {
  const res = await api(`/v1/jobs/${placeholders.fixture}`, {
    method: "PUT",
    json: {
      name: "abuse fixture",
      trigger: { type: "date", run_at: "2099-01-01T00:00:00Z" },
      target: { type: "http", url: "https://example.com/abuse-hook" },
      paused: true,
    },
  });
  if (res.status !== 201) throw new Error(`fixture job not created: ${res.status} ${await res.text()}`);
}

async function deleteJobById(id: string): Promise<number> {
  const res = await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  await res.body?.cancel();
  return res.status;
}

/**
 * Deletes a job a case created (rightly or not) once its answer is recorded: a
 * case may name a literal id ("0", "undefined") that a later case expects to be absent.
 */
async function removeCreatedJob(c: AbuseCase, o: Outcome): Promise<void> {
  const creates = (c.method === "POST" && /^\/v1\/jobs\/?(\?|$)/.test(c.path)) || (c.method === "PUT" && c.path.startsWith("/v1/jobs/"));
  if (!creates || (o.status !== 200 && o.status !== 201)) return;
  let id: unknown;
  try {
    id = (JSON.parse(o.body) as { id?: unknown }).id;
  } catch {
    return;
  }
  if (typeof id === "string" && id !== placeholders.fixture) await deleteJobById(id);
}

/** Deletes every job left over: Durable Object alarms outlive the test file. */
async function deleteAllJobs(): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const res = await api("/v1/jobs?limit=200");
    if (res.status !== 200) throw new Error(`listing jobs failed: ${res.status} ${await res.text()}`);
    const { items } = await res.json<{ items: { id: string }[] }>();
    if (items.length === 0) return;
    const statuses = await mapBounded(items, CONCURRENCY, ({ id }) => deleteJobById(id));
    // a job whose id cannot be addressed by path would loop forever: stop rather than spin
    if (!statuses.includes(204)) throw new Error(`could not delete ${items.length} jobs (statuses ${[...new Set(statuses)].join(",")})`);
  }
}

describe("abuse corpus through fetch", () => {
  beforeAll(async () => {
    await createFixture();
    // One category at a time, so a job one category creates is gone before the next looks it up.
    for (const category of categories) {
      const cases = abuseCases.filter((c) => c.category === category);
      const done = await mapBounded(cases, CONCURRENCY, async (c) => {
        const outcome = await runCase(c, placeholders);
        await removeCreatedJob(c, outcome);
        return outcome;
      });
      outcomes.push(...done);
    }
    const failed = outcomes.filter((o) => o.problem !== undefined).length;
    const lines = categories.map((category) => {
      const mine = outcomes.filter((o) => o.c.category === category);
      const bad = mine.filter((o) => o.problem !== undefined).length;
      return `  ${category.padEnd(18)} ${String(mine.length).padStart(5)} cases, ${String(mine.length - bad).padStart(5)} passed, ${String(bad).padStart(5)} failed`;
    });
    console.log([`abuse corpus: ${outcomes.length} cases, ${outcomes.length - failed} passed, ${failed} failed`, ...lines].join("\n"));
  }, 600_000);

  afterAll(async () => {
    await deleteAllJobs();
  }, 600_000);

  it("sends every case of the corpus", () => {
    expect(abuseCases.length).toBe(4320);
    expect(outcomes.length).toBe(abuseCases.length);
  });

  it.each(categories)("%s: every case gets its expected answer and no 5xx", (category) => {
    const failures = outcomes.filter((o) => o.c.category === category && o.problem !== undefined);
    const total = outcomes.filter((o) => o.c.category === category).length;
    const report = failures.slice(0, SHOWN).map(describeFailure);
    if (failures.length > SHOWN) report.push(`... and ${failures.length - SHOWN} more`);
    expect(report, `${failures.length} of ${total} ${category} cases failed`).toEqual([]);
  });
});
