import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  type QueueResult,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import type { JobObject } from "../../src/scheduling/job-object";
import { createJob, deleteJob, type JobBody, jobRuns, jobStub } from "./jobs";
import { flushStats, runDueTaskShardAlarms, useBindingsInTaskShards } from "./owners";
import { type Harness, harness, type RunMessage, recordRetryDelays, runReaches, withRetryDelays } from "./runs";

/** The error D1 reports for a dropped connection: transient, worth retrying. */
export const TRANSIENT_D1_ERROR = "D1_ERROR: Network connection lost";

/** One SQL statement as the Worker bound it. */
export interface BoundStatement {
  sql: string;
  params: unknown[];
}

/**
 * How a fault shows itself:
 * - `lost-request`: the call fails before D1 sees it (nothing is applied);
 * - `lost-response`: D1 applies the call, then its answer is lost;
 * - `hang`: the call never answers.
 */
export type FaultEffect = "lost-request" | "lost-response" | "hang";

/** Which call fails, and how. */
export interface FaultRule {
  /** A call matches when one of its statements does (a batch is one call); omitted, every call matches. */
  match?: (statement: BoundStatement) => boolean;
  /** Fails the nth matching call from now on (1 = the next one). */
  nth?: number;
  effect?: FaultEffect;
}

/** A D1 binding that passes calls through to the real one, except those a test arms to fail. */
export interface FaultyD1 {
  db: D1Database;
  /** Every call made through this binding, as the SQL of its statements. */
  calls: string[][];
  /** Calls that a fault broke, in order. */
  broken: BoundStatement[][];
  /** Arms one fault; it fires once, then the binding is healthy again. */
  failNext(rule?: FaultRule): void;
  /** Whether any armed fault is still waiting for its call. */
  armed(): boolean;
  /**
   * Runs `work` once, just before the next matching call reaches D1: another request
   * landing between what the Worker read and the write it computed from that read.
   */
  interleave(match: (statement: BoundStatement) => boolean, work: () => Promise<unknown>): void;
  /** An outage: every matching call fails (omitted `match`: every call) until `heal()`. */
  down(rule?: Omit<FaultRule, "nth">): void;
  /** Ends the outage `down` began. */
  heal(): void;
}

interface ArmedRule {
  match: (statement: BoundStatement) => boolean;
  remaining: number;
  effect: FaultEffect;
}

/** Wraps a D1 binding so tests can lose a request, lose a response, or hang at a chosen statement. */
export function faultyD1(real: D1Database = env.DB): FaultyD1 {
  const rules: ArmedRule[] = [];
  const calls: string[][] = [];
  const broken: BoundStatement[][] = [];
  const interleaved: { match: (statement: BoundStatement) => boolean; work: () => Promise<unknown> }[] = [];

  let outage: ArmedRule | undefined;

  async function call<T>(statements: BoundStatement[], execute: () => Promise<T>): Promise<T> {
    calls.push(statements.map((s) => s.sql));
    const hook = interleaved.findIndex((h) => statements.some(h.match));
    if (hook !== -1) await interleaved.splice(hook, 1)[0]?.work();
    const index = rules.findIndex((rule) => statements.some(rule.match) && --rule.remaining === 0);
    const rule = index === -1 ? (outage && statements.some(outage.match) ? outage : undefined) : rules.splice(index, 1)[0];
    if (!rule) return execute();
    broken.push(statements);
    if (rule.effect === "hang") return new Promise<T>(() => {});
    if (rule.effect === "lost-response") await execute();
    throw new Error(TRANSIENT_D1_ERROR);
  }

  class Statement {
    constructor(
      readonly real: D1PreparedStatement,
      readonly sql: string,
      readonly params: unknown[],
    ) {}
    bind(...values: unknown[]) {
      return new Statement(this.real.bind(...values), this.sql, values);
    }
    first(column?: string) {
      return call([this], () => (column === undefined ? this.real.first() : this.real.first(column)));
    }
    run() {
      return call([this], () => this.real.run());
    }
    all() {
      return call([this], () => this.real.all());
    }
    raw(options?: { columnNames?: boolean }) {
      return call([this], () => (options?.columnNames ? this.real.raw({ columnNames: true }) : this.real.raw()));
    }
  }

  const unwrap = (statement: D1PreparedStatement): Statement => {
    if (!(statement instanceof Statement)) throw new Error("faultyD1: a statement from another binding was batched");
    return statement;
  };

  const db = {
    prepare: (sql: string) => new Statement(real.prepare(sql), sql, []) as unknown as D1PreparedStatement,
    batch: <T>(statements: D1PreparedStatement[]) => {
      const own = statements.map(unwrap);
      return call(own, () => real.batch<T>(own.map((s) => s.real)));
    },
    exec: (sql: string) => call([{ sql, params: [] }], () => real.exec(sql)),
    withSession: () => {
      throw new Error("faultyD1: sessions are not wrapped");
    },
    dump: () => real.dump(),
  };

  return {
    db: db as unknown as D1Database,
    calls,
    broken,
    failNext(rule = {}) {
      rules.push({ match: rule.match ?? (() => true), remaining: rule.nth ?? 1, effect: rule.effect ?? "lost-request" });
    },
    armed: () => rules.length > 0,
    interleave(match, work) {
      interleaved.push({ match, work });
    },
    down(rule = {}) {
      outage = { match: rule.match ?? (() => true), remaining: 0, effect: rule.effect ?? "lost-request" };
    },
    heal() {
      outage = undefined;
    },
  };
}

/** A harness (test/helpers/runs.ts) whose D1 binding fails where the test arms it to. */
export function faultyHarness(): { d1: FaultyD1; h: Harness } {
  const d1 = faultyD1();
  return { d1, h: harness({ DB: d1.db }) };
}

// Statements of a run's life, recognised by their SQL (Drizzle lists SET columns in table order).

/** Loading a run by id (the consumer's first read). */
export const loadRun = (s: BoundStatement) => /^select .* from "runs" where "runs"\."id" (= \?|in \(\?(, \?)*\))$/.test(s.sql);
/** The claim: a waiting run becomes `running` (UPDATE ... WHERE status IN waiting). */
export const claimRun = (s: BoundStatement) =>
  s.sql.startsWith('update "runs"') && s.sql.includes('"runs"."status" in (') && s.params[0] === "running";
/** Recording that an attempt failed and will be retried. */
export const recordRetry = (s: BoundStatement) => s.sql.startsWith('update "runs"') && s.params[0] === "retrying";
/** The stats rollup that rides in the same batch as a run's final UPDATE. */
export const rollupStats = (s: BoundStatement) => s.sql.startsWith("INSERT INTO job_stats");
/** Inserting a new run (POST /v1/tasks, an alarm's fire). */
export const insertRun = (s: BoundStatement) => s.sql.startsWith('insert into "runs"');
/** The JobObject writing its schedule (state and/or its promise, next_run_at) to D1. */
export const recordSchedule = (s: BoundStatement) => s.sql.startsWith('update "jobs" set') && s.sql.includes('"jobs"."version" = ?');
/** An API write of a job's definition (PATCH, pause, resume, a conditional PUT): it bumps the version. */
export const writeJob = (s: BoundStatement) => s.sql.startsWith('update "jobs" set') && s.sql.includes('"version" = "jobs"."version" + 1');
/** Any statement that writes (D1 refusing writes while reads still work). */
export const write = (s: BoundStatement) => !/^\s*select\b/i.test(s.sql);
/** Narrows a matcher to statements that bind `value` (e.g. one run's id). */
export const binding =
  (value: unknown, match: (s: BoundStatement) => boolean = () => true) =>
  (s: BoundStatement) =>
    match(s) && s.params.includes(value);

/** What a queue handler did with a batch, and whether it threw (the platform then retries every message not acked). */
export interface Delivery {
  result: QueueResult;
  thrown: unknown;
}

/** Delivers one batch to the Worker's queue entry point with `workerEnv`; a throwing handler is reported, not rethrown. */
export async function deliverBatch(
  workerEnv: Env,
  queue: string,
  messages: { id: string; body: RunMessage; attempts?: number }[],
): Promise<Delivery> {
  const batch = createMessageBatch(
    queue,
    messages.map((m) => ({ id: m.id, timestamp: Date.now(), attempts: m.attempts ?? 1, body: m.body })),
  );
  const delays = recordRetryDelays(batch);
  const ctx = createExecutionContext();
  let thrown: unknown;
  try {
    await worker.queue(batch as MessageBatch<unknown>, workerEnv, ctx);
  } catch (error) {
    thrown = error;
  }
  return { result: withRetryDelays(await getQueueResult(batch, ctx), delays), thrown };
}

/** One Cron Trigger invocation through the Worker's scheduled entry point. */
export async function cronTick(workerEnv: Env, scheduledTime: number, cron = "* * * * *"): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime, cron }), workerEnv, ctx);
  await waitOnExecutionContext(ctx);
}

/** The scheduledTime of the last heartbeat tick recorded in D1, or null. */
export async function recordedHeartbeat(): Promise<number | null> {
  const row = await env.DB.prepare("SELECT value FROM scheduler_state WHERE key = 'heartbeat_at'").first<{ value: string }>();
  return row ? Number(row.value) : null;
}

/** Outcome counters of one job's stats rollups, summed over all hours. */
export async function jobStats(
  jobId: string,
): Promise<{ succeeded: number; failed: number; dead: number; missed: number; skipped: number }> {
  await flushStats([jobId]);
  const row = await env.DB.prepare(
    `SELECT coalesce(sum(succeeded), 0) AS succeeded, coalesce(sum(failed), 0) AS failed, coalesce(sum(dead), 0) AS dead,
            coalesce(sum(missed), 0) AS missed, coalesce(sum(skipped), 0) AS skipped
     FROM job_stats WHERE job_id = ?`,
  )
    .bind(jobId)
    .first<{ succeeded: number; failed: number; dead: number; missed: number; skipped: number }>();
  return row ?? { succeeded: 0, failed: 0, dead: 0, missed: 0, skipped: 0 };
}

/** The job's row in D1 (the schedule fields these tests read). */
export async function storedJob(id: string): Promise<{ state: string; next_run_at: number | null } | null> {
  return env.DB.prepare("SELECT state, next_run_at FROM jobs WHERE id = ?").bind(id).first<{ state: string; next_run_at: number | null }>();
}

/**
 * Test setup only: the job's current JobObject instance uses `bindings` (e.g.
 * a harness's recording queues or a faulty D1) until it is evicted.
 */
export async function useBindingsInJobObject(jobId: string, bindings: Partial<Env>): Promise<void> {
  await runInDurableObject(jobStub(jobId), (instance: JobObject) => {
    const holder = instance as unknown as { env: Env };
    holder.env = { ...holder.env, ...bindings };
  });
}

/** Test setup only: the JobObject's alarm is lost (as when its retries ran out), its schedule kept. */
export async function loseAlarm(jobId: string): Promise<void> {
  await runInDurableObject(jobStub(jobId), async (_instance: JobObject, state) => {
    await state.storage.deleteAlarm();
  });
}

/** Test setup only: D1's copy of the job's next fire, as the last alarm recorded it. */
export async function setRecordedNextRun(jobId: string, nextRunAt: number): Promise<void> {
  await env.DB.prepare("UPDATE jobs SET next_run_at = ? WHERE id = ?").bind(nextRunAt, jobId).run();
}

/** A queue binding whose sends never complete; `reached` tells when the Worker got that far. */
export function hangingQueue(): { queue: Queue<unknown>; reached: () => boolean } {
  let reached = false;
  const never = () => {
    reached = true;
    return new Promise<never>(() => {});
  };
  const queue = {
    metrics: never,
    send: never,
    sendBatch: never,
  } as unknown as Queue<unknown>;
  return { queue, reached: () => reached };
}

/** The platform's retry of an alarm that threw or was aborted: runs the handler again, whatever alarm is set. */
export async function retryAlarm(jobId: string): Promise<void> {
  await runInDurableObject(jobStub(jobId), (instance: JobObject) => instance.alarm());
}

/** A JobObject namespace in which one job's object fails every call (a persistent fault), the others work. */
export function jobObjectsFailingFor(
  jobId: string,
  message = "Durable Object reset because its code was updated",
): DurableObjectNamespace<JobObject> {
  const real = env.JOB_OBJECT;
  const brokenId = real.idFromName(jobId);
  const fail = async () => {
    throw new Error(message);
  };
  // Every RPC method rejects; `then` stays undefined so the stub is not mistaken for a promise.
  const broken = new Proxy({}, { get: (_target, property) => (property === "then" ? undefined : fail) });
  return new Proxy(real, {
    get(target, property) {
      if (property === "get") return (id: DurableObjectId) => (id.equals(brokenId) ? broken : target.get(id));
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A HostGuard namespace whose objects all fail every call while `down` (a Durable Object outage), else the real ones. */
export function switchableHostGuards(message = "Durable Object is overloaded. Too many requests queued."): {
  namespace: Env["HOST_GUARD"];
  down(): void;
  heal(): void;
  /** Calls refused while down. */
  refused(): number;
} {
  const real = env.HOST_GUARD;
  let down = false;
  let refused = 0;
  const fail = async () => {
    refused++;
    throw Object.assign(new Error(message), { overloaded: true });
  };
  const broken = new Proxy({}, { get: (_target, property) => (property === "then" ? undefined : fail) });
  const namespace = new Proxy(real, {
    get(target, property) {
      if (property === "get") return (id: DurableObjectId) => (down ? broken : target.get(id));
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    namespace,
    down: () => {
      down = true;
    },
    heal: () => {
      down = false;
    },
    refused: () => refused,
  };
}

/**
 * Jobs created through the returned helper are deleted after each test:
 * Durable Object alarms are not reset between tests.
 */
export function jobsDeletedAfterEach(prefix: string) {
  const created: string[] = [];
  afterEach(async () => {
    while (created.length > 0) await deleteJob(created.pop() ?? "");
  });
  let counter = 0;
  return {
    /** A fresh job id, deleted after the test. */
    newId(): string {
      const id = `${prefix}-${Date.now()}-${counter++}`;
      created.push(id);
      return id;
    },
    /** A yearly job calling `url`: only a fire the test backdates is due, its real alarm stays a year away. */
    async yearly(url: string, overrides: Record<string, unknown> = {}): Promise<JobBody> {
      return createJob({
        id: this.newId(),
        trigger: { type: "cron", expression: "0 0 1 1 *" },
        target: { type: "http", url },
        misfire_grace_time: 3600,
        ...overrides,
      });
    },
  };
}

/**
 * The job's clock is set: a future alarm at its next fire (or sooner, just after the hour closes, if
 * it has ended runs to add to the statistics), and D1 records the next fire too (a yearly job's promise).
 */
export async function expectFutureAlarm(jobId: string): Promise<void> {
  const state = await jobStub(jobId).inspect();
  expect(state.alarm).toBeGreaterThan(Date.now());
  const hourEnd = Math.ceil((Date.now() + 1) / 3_600_000) * 3_600_000;
  // The flush wake falls within ten minutes after the hour closes, at an offset of the job's own.
  const flushWake = (state.alarm ?? 0) >= hourEnd && (state.alarm ?? 0) < hourEnd + 10 * 60_000;
  expect(state.alarm === state.nextFire || (flushWake && (state.nextFire === null || (state.alarm ?? 0) <= state.nextFire))).toBe(true);
  expect((await storedJob(jobId))?.next_run_at).toBe(state.nextFire);
}

/** The runs of one fire slot, once the real queue consumer has finished them. */
export async function finishedRunsOfSlot(jobId: string, slot: number): Promise<{ id: string; status: string }[]> {
  const ofSlot = (await jobRuns(jobId)).filter((r) => r.fire_slot === slot);
  for (const run of ofSlot) await runReaches(run.id, ["succeeded", "failed", "dead"]);
  return (await jobRuns(jobId)).filter((r) => r.fire_slot === slot).map(({ id, status }) => ({ id, status }));
}

/** One call the Worker made to a task shard: the RPC method, the shard (its first argument names it) and the arguments. */
export interface ShardCall {
  method: string;
  shard: number;
  args: unknown[];
}

/** The errors a Durable Object fails with while it is unavailable: a reset (a deploy) or an overload. */
const SHARD_ERRORS = {
  reset: () => new Error("Durable Object reset because its code was updated."),
  overloaded: () => Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true }),
};

/**
 * How a task shard fault shows itself:
 * - `lost-request`: the call fails before the shard sees it (nothing is done);
 * - `lost-response`: the shard does the call, then its answer is lost.
 */
export type ShardFaultEffect = "lost-request" | "lost-response";

/** Which task shard calls fail, and how. */
export interface ShardFaultRule {
  /** Only calls of this RPC method (createRuns, claimRuns, finishRuns, getRuns, ...); omitted, every method. */
  method?: string;
  /** Only calls to this shard; omitted, every shard. */
  shard?: number;
  /** Any other condition on the call (e.g. that it names a run id). */
  match?: (call: ShardCall) => boolean;
  /** Fails the nth matching call from now on (1 = the next one); `failNext` only. */
  nth?: number;
  effect?: ShardFaultEffect;
  /** What the shard fails with; default a reset. */
  error?: keyof typeof SHARD_ERRORS;
}

/** A TaskShard namespace that passes calls through to the real shards, except those a test arms to fail. */
export interface FaultyTaskShards {
  /** Put it in a harness (`harness({ TASK_SHARD: shards.namespace })`) so the Worker's entry points call through it. */
  namespace: Env["TASK_SHARD"];
  /** Every call made through it. */
  calls: ShardCall[];
  /** Calls a fault broke, in order. */
  broken: (ShardCall & { effect: ShardFaultEffect })[];
  /** Arms one fault; it fires once, then the shards answer again. */
  failNext(rule?: ShardFaultRule): void;
  /** An outage: every matching call fails until `heal()`. */
  down(rule?: Omit<ShardFaultRule, "nth">): void;
  /** Ends the outage `down` began. */
  heal(): void;
  /** Whether shard `n` itself is down now (the outage takes every one of its calls, its alarm too). */
  isDown(n: number): boolean;
}

interface ArmedShardRule {
  matches: (call: ShardCall) => boolean;
  remaining: number;
  effect: ShardFaultEffect;
  error: keyof typeof SHARD_ERRORS;
}

/** Wraps the TASK_SHARD namespace so tests can lose a shard call's request or its answer, once or for an outage. */
export function faultyTaskShards(): FaultyTaskShards {
  const real = env.TASK_SHARD;
  const calls: ShardCall[] = [];
  const broken: (ShardCall & { effect: ShardFaultEffect })[] = [];
  const rules: ArmedShardRule[] = [];
  let outage: ArmedShardRule | undefined;
  const armed = (rule: ShardFaultRule, remaining: number): ArmedShardRule => ({
    matches: (call) =>
      (rule.method === undefined || rule.method === call.method) &&
      (rule.shard === undefined || rule.shard === call.shard) &&
      (rule.match === undefined || rule.match(call)),
    remaining,
    effect: rule.effect ?? "lost-request",
    error: rule.error ?? "reset",
  });

  const stubFor = (id: DurableObjectId) => {
    const stub = real.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    // Every RPC method goes through here; `then` stays undefined so the stub is not mistaken for a promise.
    return new Proxy(
      {},
      {
        get: (_target, property) => {
          if (property === "then" || typeof property !== "string") return undefined;
          return async (...args: unknown[]) => {
            const call: ShardCall = { method: property, shard: Number(args[0]), args };
            calls.push(call);
            const index = rules.findIndex((r) => r.matches(call) && --r.remaining === 0);
            const rule = index === -1 ? (outage?.matches(call) ? outage : undefined) : rules.splice(index, 1)[0];
            const perform = () => stub[property]?.(...args);
            if (!rule) return perform();
            broken.push({ ...call, effect: rule.effect });
            if (rule.effect === "lost-response") await perform();
            throw SHARD_ERRORS[rule.error]();
          };
        },
      },
    );
  };

  const namespace = new Proxy(real, {
    get(target, property) {
      if (property === "get") return (id: DurableObjectId) => stubFor(id);
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });

  return {
    namespace,
    calls,
    broken,
    failNext(rule = {}) {
      rules.push(armed(rule, rule.nth ?? 1));
    },
    down(rule = {}) {
      outage = armed(rule, 0);
    },
    heal() {
      outage = undefined;
    },
    isDown: (n) => outage?.matches({ method: "alarm", shard: n, args: [String(n)] }) ?? false,
  };
}

/** A harness whose Worker entry points call the task shards through a faulty namespace (and D1 through a faulty binding). */
export function faultyShardHarness(): { shards: FaultyTaskShards; d1: FaultyD1; h: Harness } {
  const shards = faultyTaskShards();
  const d1 = faultyD1();
  return { shards, d1, h: harness({ TASK_SHARD: shards.namespace, DB: d1.db }) };
}

/**
 * The harness with the task shards' own work in it, for the outage platform (test/helpers/outage.ts):
 * the shards send through its recording queues, and each minute the platform ticks, every shard
 * alarm then due fires too (their upkeep: lost messages, vanished consumers, statistics), except in a
 * shard that is down. `bindings` go into the shards as well (e.g. a faulty D1).
 */
export async function withTaskShardAlarms(
  h: Harness,
  down: (shard: number) => boolean = () => false,
  bindings: Partial<Env> = {},
): Promise<Harness & { alarmsRan: () => number }> {
  await useBindingsInTaskShards({ TASK_QUEUE: h.env.TASK_QUEUE, HIGH_QUEUE: h.env.HIGH_QUEUE, ...bindings });
  let ran = 0;
  return {
    ...h,
    async tick() {
      try {
        await h.tick();
      } finally {
        ran += await runDueTaskShardAlarms(down);
      }
    },
    alarmsRan: () => ran,
  };
}
