import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  type QueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import type { RunRow } from "../../src/runs/store";
import { BASE, TOKEN } from "./http";
import { changeOwnedRun, flushStats, isOwned, ownedRun } from "./owners";
import { eventually } from "./receiver";

export const TASK_QUEUE = "taskflare-tasks";
export const HIGH_QUEUE = "taskflare-tasks-high";
export const DEAD_LETTER_QUEUE = "taskflare-dead-letter";

/**
 * What the Worker puts on a queue: the run and the attempt to start, and when
 * it is due if sent ahead of it; or, with `outcome`, an attempt's outcome D1
 * could not record when it ended.
 */
export interface RunMessage {
  run_id: string;
  attempt: number;
  due_at?: number;
  outcome?: { status: string; finished_at: number; result?: unknown; error?: unknown; available_at?: number };
}

/** One message the Worker sent, as a recording queue saw it. */
export interface SentMessage {
  queue: string;
  body: RunMessage;
  delaySeconds: number | undefined;
}

/** A run as the API returns it (the fields these tests read). */
export interface RunBody {
  id: string;
  status: string;
  attempt: number;
  max_attempts: number;
  priority: string;
  next_attempt_at: string | null;
  request_id: string | null;
  retry_of: string | null;
  result: unknown;
  error: unknown;
}

/** A run as stored in D1, JSON columns parsed. */
export interface StoredRun {
  id: string;
  status: string;
  attempt: number;
  max_attempts: number;
  priority: string;
  available_at: number;
  started_at: number | null;
  finished_at: number | null;
  lease_expires_at: number | null;
  request_id: string | null;
  idempotency_key: string | null;
  retry_of: string | null;
  result: unknown;
  error: unknown;
  /** Bytes of the stored result and error, as JSON. */
  result_bytes: number;
  error_bytes: number;
  timeout?: number;
  job_version?: number | null;
  scheduled_for?: number;
  fire_slot?: number | null;
  deferred_reason?: string | null;
}

/** Outcome counters of the tasks' (job_id '') stats rollups, summed over all hours. */
export interface TaskStats {
  succeeded: number;
  failed: number;
  dead: number;
  cancelled: number;
}

/** A retry policy whose retries only come when a test delivers them (real queues would wait an hour). */
export const MANUAL_RETRY = { max_attempts: 3, backoff: 3600, max_delay: 3600 };

const RUN_QUEUES: Record<"TASK_QUEUE" | "HIGH_QUEUE", string> = { TASK_QUEUE, HIGH_QUEUE };

/** Sends still to fail, shared by a harness's queues (a Queues outage). */
interface Outage {
  failures: number;
}

/** A queue binding that records what the Worker sends instead of delivering it. */
function recordingQueue(name: string, sent: SentMessage[], outage: Outage): Queue<unknown> {
  const record = (body: unknown, delaySeconds: number | undefined) => {
    if (outage.failures > 0) {
      outage.failures--;
      throw new Error(`simulated outage of queue ${name}`);
    }
    sent.push({ queue: name, body: body as RunMessage, delaySeconds });
  };
  const metadata = { metrics: { backlogCount: 0, backlogBytes: 0 } };
  return {
    async metrics() {
      return { backlogCount: 0, backlogBytes: 0 };
    },
    async send(body, options) {
      record(body, options?.delaySeconds);
      return { metadata };
    },
    async sendBatch(messages, options) {
      for (const m of messages) record(m.body, m.delaySeconds ?? options?.delaySeconds);
      return { metadata };
    },
  };
}

/**
 * The Worker's real entry points over the real D1, but with queues that record
 * instead of deliver: the test decides when (and how often) each message the
 * Worker sent arrives at the consumer.
 */
export interface Harness {
  env: Env;
  /** Every message the Worker sent, in order. */
  sent: SentMessage[];
  /** Calls an authenticated /v1 route through the Worker's fetch entry point. */
  api(path: string, init?: { method?: string; json?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /** `POST /v1/tasks`; fails the test unless it answers 202. */
  enqueue(body: unknown, headers?: Record<string, string>): Promise<RunBody>;
  /** Messages sent for one run, in order. */
  sentFor(runId: string): SentMessage[];
  /** The last message sent for a run; fails when there is none. */
  lastSent(runId: string): SentMessage;
  /** Delivers messages to the Worker's queue entry point as one batch. */
  deliver(queue: string, bodies: RunMessage[], messageIds?: string[]): Promise<QueueResult>;
  /** Delivers a message the Worker sent, on the queue it was sent to. */
  redeliver(message: SentMessage): Promise<QueueResult>;
  /** Makes the next `count` sends to either queue throw. */
  failNextSends(count: number): void;
  /** Runs one heartbeat tick through the Worker's scheduled entry point. */
  tick(): Promise<void>;
}

/** Builds a harness; `overrides` change bindings (e.g. a signing secret). */
export function harness(overrides: Partial<Env> = {}): Harness {
  const sent: SentMessage[] = [];
  const outage: Outage = { failures: 0 };
  const harnessEnv: Env = {
    ...env,
    TASK_QUEUE: recordingQueue(RUN_QUEUES.TASK_QUEUE, sent, outage),
    HIGH_QUEUE: recordingQueue(RUN_QUEUES.HIGH_QUEUE, sent, outage),
    ...overrides,
  };
  const h: Harness = {
    env: harnessEnv,
    sent,
    async api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${TOKEN}`);
      let body: string | undefined;
      if (init.json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(init.json);
      }
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`${BASE}${path}`, { method: init.method ?? "GET", headers, body }), harnessEnv, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    },
    async enqueue(body, headers = {}) {
      const res = await h.api("/v1/tasks", { method: "POST", json: body, headers });
      if (res.status !== 202) throw new Error(`POST /v1/tasks answered ${res.status}: ${await res.text()}`);
      return res.json<RunBody>();
    },
    sentFor(runId) {
      return sent.filter((m) => m.body.run_id === runId);
    },
    lastSent(runId) {
      const mine = h.sentFor(runId);
      const last = mine[mine.length - 1];
      if (!last) throw new Error(`no message was sent for ${runId}`);
      return last;
    },
    async deliver(queue, bodies, messageIds) {
      const messages = bodies.map((body, i) => ({
        id: messageIds?.[i] ?? crypto.randomUUID(),
        timestamp: Date.now(),
        attempts: 1,
        body,
      }));
      const batch = createMessageBatch(queue, messages);
      const delays = recordRetryDelays(batch);
      const ctx = createExecutionContext();
      await worker.queue(batch as MessageBatch<unknown>, harnessEnv, ctx);
      return withRetryDelays(await getQueueResult(batch, ctx), delays);
    },
    redeliver(message) {
      return h.deliver(message.queue, [message.body]);
    },
    failNextSends(count) {
      outage.failures = count;
    },
    async tick() {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), harnessEnv, ctx);
      await waitOnExecutionContext(ctx);
    },
  };
  return h;
}

/**
 * Notes the delay each `retry()` asks for: getQueueResult (vitest-plugin
 * 1.5) reports which messages were retried but drops their delaySeconds.
 */
export function recordRetryDelays(batch: MessageBatch<unknown>): Map<string, number | undefined> {
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    Object.defineProperty(message, "retry", {
      value: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        retry(options);
      },
    });
  }
  return delays;
}

/** The queue result with the delay each retried message asked for. */
export function withRetryDelays(result: QueueResult, delays: Map<string, number | undefined>): QueueResult {
  return {
    ...result,
    retryMessages: result.retryMessages.map((m) => (delays.get(m.msgId) === undefined ? m : { ...m, delaySeconds: delays.get(m.msgId) })),
  };
}

interface RawRun extends Omit<StoredRun, "result" | "error"> {
  result: string | null;
  error: string | null;
}

/** A run where it is kept (its owner, or D1 for runs from before), in the shape of its D1 row, or undefined. */
export async function storedRun(id: string): Promise<StoredRun | undefined> {
  if (isOwned(id)) {
    const run = await ownedRun(id);
    return run && asStored(run);
  }
  const raw = await env.DB.prepare(
    `SELECT *, coalesce(length(CAST(result AS BLOB)), 0) AS result_bytes, coalesce(length(CAST(error AS BLOB)), 0) AS error_bytes
     FROM runs WHERE id = ?`,
  )
    .bind(id)
    .first<RawRun>();
  if (!raw) return undefined;
  const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));
  return { ...raw, result: parse(raw.result), error: parse(raw.error) };
}

/** An owner's run in the shape of a D1 row (the fields these tests read). */
function asStored(run: RunRow): StoredRun {
  const bytes = (value: unknown) => (value === null || value === undefined ? 0 : new TextEncoder().encode(JSON.stringify(value)).length);
  return {
    id: run.id,
    status: run.status,
    attempt: run.attempt,
    max_attempts: run.maxAttempts,
    priority: run.priority,
    available_at: run.availableAt,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    lease_expires_at: run.leaseExpiresAt,
    request_id: run.requestId,
    idempotency_key: run.idempotencyKey,
    retry_of: run.retryOf,
    result: run.result ?? null,
    error: run.error ?? null,
    result_bytes: bytes(run.result),
    error_bytes: bytes(run.error),
    timeout: run.timeout,
    job_version: run.jobVersion,
    scheduled_for: run.scheduledFor,
    fire_slot: run.fireSlot,
    deferred_reason: run.deferredReason,
  };
}

/** The run's row in D1; fails when it does not exist. */
export async function mustStoredRun(id: string): Promise<StoredRun> {
  const run = await storedRun(id);
  if (!run) throw new Error(`run ${id} is not in D1`);
  return run;
}

/** Polls D1 until the run has one of `statuses`. */
export function runReaches(id: string, statuses: string[], timeoutMs = 10_000): Promise<StoredRun> {
  return eventually(
    async () => {
      const run = await storedRun(id);
      return run && statuses.includes(run.status) ? run : undefined;
    },
    timeoutMs,
    `run ${id} to reach ${statuses.join("/")}`,
  );
}

/** Setup only: the time a waiting run was waiting for has passed (`agoMs` ago). */
export async function makeDue(id: string, agoMs = 1): Promise<void> {
  if (isOwned(id)) return changeOwnedRun(id, { availableAt: Date.now() - agoMs });
  await env.DB.prepare("UPDATE runs SET available_at = ? WHERE id = ?")
    .bind(Date.now() - agoMs, id)
    .run();
}

/** Setup only: the lease of a running run ran out `agoMs` ago (its consumer is gone). */
export async function expireLease(id: string, agoMs = 1): Promise<void> {
  const past = Date.now() - agoMs;
  const owned = isOwned(id) ? await ownedRun(id) : undefined;
  if (owned) return owned.status === "running" ? changeOwnedRun(id, { leaseExpiresAt: past }) : undefined;
  await env.DB.prepare("UPDATE runs SET lease_expires_at = ? WHERE id = ? AND status = 'running'").bind(past, id).run();
}

/** The tasks' stats rollup totals (job_id ''). */
export async function taskStats(): Promise<TaskStats> {
  await flushStats();
  const row = await env.DB.prepare(
    `SELECT coalesce(sum(succeeded), 0) AS succeeded, coalesce(sum(failed), 0) AS failed,
            coalesce(sum(dead), 0) AS dead, coalesce(sum(cancelled), 0) AS cancelled
     FROM job_stats WHERE job_id = ''`,
  ).first<TaskStats>();
  return row ?? { succeeded: 0, failed: 0, dead: 0, cancelled: 0 };
}

/** How the task stats changed between two readings. */
export function statsDelta(before: TaskStats, after: TaskStats): TaskStats {
  return {
    succeeded: after.succeeded - before.succeeded,
    failed: after.failed - before.failed,
    dead: after.dead - before.dead,
    cancelled: after.cancelled - before.cancelled,
  };
}

/** No change in any outcome counter. */
export const NO_CHANGE: TaskStats = { succeeded: 0, failed: 0, dead: 0, cancelled: 0 };
