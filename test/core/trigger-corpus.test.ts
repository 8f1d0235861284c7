/// <reference types="vite/client" />
import { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { CronTrigger, IntervalTrigger, schedulingFields, Trigger, TriggerPreviewRequest } from "../../src/scheduling/trigger-schema";
import { nextFireTimes, resolveTrigger } from "../../src/scheduling/triggers";
// As text: the abuse corpus holds raw U+2028/U+2029, which a JSON import fails to evaluate in workerd.
import abuseText from "../corpora/abuse-corpus.json?raw";
import cronCases from "../corpora/cron-cases.json";
import intervalCases from "../corpora/interval-cases.json";

// Oracles from APScheduler and croner (see test/corpora/README.md); never edited here.
interface CronCase {
  source: string;
  expression: string;
  timezone: string;
  start: string;
  count: number;
  note: string;
  expected: string[] | null;
  disputed?: boolean;
  expected_croner?: string[] | { error: string };
}

interface IntervalCase {
  source: string;
  interval: { weeks?: number; days?: number; hours?: number; minutes?: number; seconds?: number };
  start_date: string;
  timezone: string;
  now: string;
  expected: string[];
  note: string;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

function cronFires(c: CronCase): string[] {
  const trigger = CronTrigger.parse({ type: "cron", expression: c.expression, timezone: c.timezone });
  return nextFireTimes(resolveTrigger(trigger, {}), Date.parse(c.start), c.count).map(iso);
}

/** The answer Taskflare's DST policy gives: agreed `expected`, else croner's side of a dispute. */
function policyAnswer(c: CronCase): string[] | { error: string } | undefined {
  return c.disputed ? c.expected_croner : (c.expected ?? undefined);
}

const cases = cronCases as CronCase[];

describe("cron corpus (APScheduler 3.9 / croner 11 oracles)", () => {
  it("has every case", () => {
    expect(cases).toHaveLength(128);
  });

  it.each(cases.map((c, i) => [i, c.expression, c.timezone, c] as const))(
    "case %i: %s in %s matches the oracle",
    (_i, _expression, _zone, c) => {
      const answer = policyAnswer(c);
      if (answer === undefined) throw new Error(`case without an answer: ${c.source}`);
      if (!Array.isArray(answer)) {
        // The one case with no answer under the policy ("6-1" wrapping weekday range):
        // the schema refuses it, so it can never reach nextFireTimes.
        const result = CronTrigger.safeParse({ type: "cron", expression: c.expression, timezone: c.timezone });
        expect(result.success).toBe(false);
        expect(result.error?.issues[0]?.message).toMatch(/invalid cron expression: .*6-1/);
        return;
      }
      const got = cronFires(c);
      if (answer.length === 0) {
        expect(got).toEqual([]); // never fires (Feb 30, Apr 31)
      } else {
        // W cases keep only the fire times the source test asserted, so compare that prefix.
        expect(got).toHaveLength(c.count);
        expect(got.slice(0, answer.length)).toEqual(answer);
      }
    },
  );
});

describe("interval corpus (APScheduler 3.x IntervalTrigger)", () => {
  const all = intervalCases as IntervalCase[];

  it("has every case", () => {
    expect(all).toHaveLength(16);
  });

  it.each(all.map((c, i) => [i, JSON.stringify(c.interval), c.note, c] as const))(
    "case %i: %s (%s) fires at the oracle's times",
    (_i, _units, _note, c) => {
      const trigger = IntervalTrigger.parse({ type: "interval", ...c.interval, start_date: c.start_date, timezone: c.timezone });
      const resolved = resolveTrigger(trigger);
      const got = nextFireTimes(resolved, Date.parse(c.now), c.expected.length).map(iso);
      expect(got).toEqual(c.expected);
    },
  );
});

interface AbuseCase {
  id: string;
  category: string;
  path: string;
  body?: unknown;
  expect: string;
  note: string;
}

// The trigger part of a job body: the trigger itself plus the job-level fields it inherits.
const JobTriggerPart = z.object({ trigger: Trigger.optional(), ...schedulingFields });

function parsedBody(c: AbuseCase): unknown {
  if (typeof c.body !== "string") return undefined;
  try {
    return JSON.parse(c.body);
  } catch {
    return undefined;
  }
}

/** Cases about triggers, time zones and dates that the trigger schemas alone must judge. */
const abuseCases = (JSON.parse(abuseText) as AbuseCase[]).filter((c) => {
  if (c.path.startsWith("/v1/tasks") || parsedBody(c) === undefined) return false;
  // A job-level end_date before a job-level start_date is the job schema's cross-field check.
  if (c.note === "end_date before start_date") return false;
  if (c.category === "numbers") return /^(trigger\.|interval )/.test(c.note);
  return ["cron-invalid", "timezone-invalid", "date-invalid"].includes(c.category);
});

describe("abuse corpus: trigger fields", () => {
  it("selects the trigger cases", () => {
    expect(abuseCases.length).toBeGreaterThan(300);
  });

  it.each(abuseCases.map((c) => [c.id, c.note, c] as const))("%s (%s) is judged as the corpus expects", (_id, _note, c) => {
    const body = parsedBody(c);
    const result = c.path === "/v1/triggers/preview" ? TriggerPreviewRequest.safeParse(body) : JobTriggerPart.safeParse(body);
    if (c.expect !== "not-500") {
      expect(result.success).toBe(false);
      return;
    }
    // Legal but odd (an expression that never fires): accepted, and computing fires must not throw.
    const trigger = Trigger.safeParse(typeof body === "object" && body !== null && "trigger" in body ? body.trigger : undefined);
    if (result.success && trigger.success) {
      expect(() => nextFireTimes(resolveTrigger(trigger.data), 0, 5)).not.toThrow();
    }
  });
});
