import { WorkerEntrypoint } from "cloudflare:workers";
import { z } from "@hono/zod-openapi";
import type { Env } from "./env";
import { ApiError, toApiError, zodDetails } from "./errors";
import type { VersionCondition } from "./jobs/etag";
import { toJob } from "./jobs/present";
import { type Job, JobCreate, JobDefinition, JobPatch } from "./jobs/schema";
import { createJob, patchJob, putJob, removeJob, requireJob, runJobNow, setJobPaused } from "./jobs/service";
import { useLogLevel } from "./log";
import { type Run, toRun } from "./runs/schema";
import { cancelRunById, requireRun, retryRunById } from "./runs/service";
import { TaskRequest } from "./tasks/schema";
import { type BatchItemResult, enqueueTask, enqueueTaskBatch } from "./tasks/service";

function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new ApiError("validation_failed", "Invalid input", zodDetails(parsed.error));
  return parsed.data;
}

/** A job write's options: `expected_version` is If-Match for RPC callers ([precondition_failed] when the job is at another). */
export interface WriteOptions {
  expected_version?: number;
}

const ExpectedVersion = z.number().int().min(1).optional();

/** The version condition of a write, validated like any other input. */
function expected(options: WriteOptions): VersionCondition | undefined {
  const version = parse(ExpectedVersion, options?.expected_version);
  return version === undefined ? undefined : [version];
}

/** Errors cross the RPC boundary as plain Errors; the message carries the API's code and details. */
async function rpc<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const e = toApiError(error);
    const details = e.details === undefined ? "" : ` ${JSON.stringify(e.details)}`;
    throw new Error(`[${e.code}] ${e.message}${details}`);
  }
}

/**
 * Taskflare for other Workers in the same account, over a service binding:
 * no HTTP and no token (the binding is the authorisation). Each method
 * validates with the API's zod schemas and calls the same services as the
 * HTTP routes. Bind it with `entrypoint = "TaskflareRPC"`.
 */
export class TaskflareRPC extends WorkerEntrypoint<Env> {
  constructor(ctx: ExecutionContext, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
  }

  private requestId(): string {
    return `rpc-${crypto.randomUUID()}`;
  }

  /** Enqueues a background task (the body of POST /v1/tasks). */
  async enqueue(task: unknown, options: { idempotency_key?: string } = {}): Promise<Run> {
    return rpc(async () => toRun((await enqueueTask(this.env, parse(TaskRequest, task), options.idempotency_key, this.requestId())).run));
  }

  /** Enqueues up to 100 tasks, each validated on its own (POST /v1/tasks/batch). */
  async enqueueBatch(tasks: unknown[]): Promise<BatchItemResult[]> {
    return rpc(async () => {
      if (!Array.isArray(tasks) || tasks.length === 0 || tasks.length > 100)
        throw new ApiError("validation_failed", "tasks must be an array of 1 to 100 items");
      return enqueueTaskBatch(this.env, tasks, this.requestId());
    });
  }

  /** One run (a task's or a job's). */
  async getRun(id: string): Promise<Run> {
    return rpc(async () => toRun(await requireRun(this.env, id)));
  }

  /** Cancels a run that has not finished. */
  async cancelRun(id: string): Promise<Run> {
    return rpc(async () => toRun(await cancelRunById(this.env, id)));
  }

  /** Runs a failed or dead run again as a new run. */
  async retryRun(id: string): Promise<Run> {
    return rpc(async () => toRun(await retryRunById(this.env, id, this.requestId())));
  }

  /** Creates a job (the body of POST /v1/jobs); fails with [conflict] if the id exists. */
  async createJob(job: unknown): Promise<Job> {
    return rpc(async () => {
      const { id, ...def } = parse(JobCreate, job);
      return toJob(await createJob(this.env, id, def), true);
    });
  }

  /** Creates or replaces a job (PUT /v1/jobs/:id); with `expected_version`, only replaces that version. */
  async putJob(id: string, job: unknown, options: WriteOptions = {}): Promise<Job> {
    return rpc(async () => toJob((await putJob(this.env, id, parse(JobDefinition, job), expected(options))).row, true));
  }

  /** A job with its next five fire times. */
  async getJob(id: string): Promise<Job> {
    return rpc(async () => toJob(await requireJob(this.env, id), true));
  }

  /** Modifies or reschedules a job (PATCH /v1/jobs/:id). */
  async updateJob(id: string, patch: unknown, options: WriteOptions = {}): Promise<Job> {
    return rpc(async () => toJob(await patchJob(this.env, id, parse(JobPatch, patch), expected(options)), true));
  }

  /** Deletes a job and cancels its pending runs. */
  async deleteJob(id: string, options: WriteOptions = {}): Promise<void> {
    return rpc(async () => removeJob(this.env, id, expected(options)));
  }

  /** Pauses a job. */
  async pauseJob(id: string, options: WriteOptions = {}): Promise<Job> {
    return rpc(async () => toJob(await setJobPaused(this.env, id, true, expected(options)), true));
  }

  /** Resumes a job from now. */
  async resumeJob(id: string, options: WriteOptions = {}): Promise<Job> {
    return rpc(async () => toJob(await setJobPaused(this.env, id, false, expected(options)), true));
  }

  /** Runs a job now, subject to max_instances. */
  async runJob(id: string): Promise<Run> {
    return rpc(async () => toRun(await runJobNow(this.env, id, this.requestId())));
  }
}
