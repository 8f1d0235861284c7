import type { HostGuard } from "./hosts/host-guard";
import type { JobObject } from "./scheduling/job-object";
import type { TaskShard } from "./tasks/task-shard";

/** Bindings and secrets the Worker receives (see wrangler.toml and .dev.vars.example). */
export interface Env {
  DB: D1Database;
  TASK_QUEUE: Queue<unknown>;
  HIGH_QUEUE: Queue<unknown>;
  JOB_OBJECT: DurableObjectNamespace<JobObject>;
  HOST_GUARD: DurableObjectNamespace<HostGuard>;
  /** The task shards: each keeps its share of the ad-hoc tasks' runs. */
  TASK_SHARD: DurableObjectNamespace<TaskShard>;
  /** How many task shards to spread tasks over (default 16). */
  TASK_SHARDS?: string;
  /** Bearer token for /v1, /metrics and /dashboard (a Worker secret). */
  API_TOKEN?: string;
  /** While rotating: the token being retired, still accepted until this secret is deleted. */
  API_TOKEN_PREVIOUS?: string;
  /** Signs outbound requests per Standard Webhooks when set. */
  WEBHOOK_SIGNING_SECRET?: string;
  /** "true" lets targets reach private and loopback addresses (local development only). */
  ALLOW_PRIVATE_TARGETS?: string;
  /** Days finished runs are kept before the daily clean-up deletes them (default 30). */
  RUN_RETENTION_DAYS?: string;
  /** "true" only in `.dev.vars`: marks a local `wrangler dev` session. */
  LOCAL_DEVELOPMENT?: string;
  /** Least severe log level written: debug, info (default), warn or error. */
  LOG_LEVEL?: string;
}

/** Configuration derived from the raw bindings, parsed once per use. */
export interface Config {
  apiToken: string | undefined;
  /** Every token currently accepted (the current one first). */
  apiTokens: string[];
  localDevelopment: boolean;
  allowPrivateTargets: boolean;
  signingSecret: string | undefined;
}

/** Reads the switches and secrets; empty strings count as unset. */
export function readConfig(env: Env): Config {
  const nonEmpty = (value: string | undefined) => (value && value.trim() !== "" ? value : undefined);
  return {
    apiToken: nonEmpty(env.API_TOKEN),
    apiTokens: [nonEmpty(env.API_TOKEN), nonEmpty(env.API_TOKEN_PREVIOUS)].filter((t): t is string => t !== undefined),
    localDevelopment: env.LOCAL_DEVELOPMENT === "true",
    allowPrivateTargets: env.ALLOW_PRIVATE_TARGETS === "true",
    signingSecret: nonEmpty(env.WEBHOOK_SIGNING_SECRET),
  };
}
