import type { Env } from "../env";
import { findHandler } from "../handlers";
import { type HandlerContext, PermanentError, RetryableError } from "../handlers/registry";
import type { RunRow } from "../runs/store";
import { type AttemptEnd, type AttemptVerdict, classifyAttempt } from "./attempt-outcome";
import { retryPolicyOf } from "./target-schema";

/**
 * The handler a stored target names and the arguments it is given. The handler validates them;
 * parsing the whole target first would validate an HTTP target (its body too) twice per attempt.
 */
function handlerCall(target: unknown): { name: string; args: unknown } {
  const stored = (typeof target === "object" && target !== null ? target : {}) as Partial<Record<string, unknown>>;
  if (stored.type === "http") {
    const { type: _type, ...args } = stored;
    return { name: "http", args };
  }
  return { name: stored.type === "handler" && typeof stored.name === "string" ? stored.name : "", args: stored.args ?? {} };
}

/** Makes a claimed run's current attempt and classifies how it ended (wherever it is made: the consumer or an alarm). */
export async function attemptTarget(env: Env, run: RunRow): Promise<AttemptVerdict & { finishedAt: number }> {
  let end: AttemptEnd;
  try {
    end = { ok: true, result: await runTarget(env, run) };
  } catch (error) {
    end = { ok: false, error };
  }
  const finishedAt = Date.now();
  const verdict = classifyAttempt(end, {
    attempt: run.attempt,
    maxAttempts: run.maxAttempts,
    retry: retryPolicyOf(run.retry),
    now: finishedAt,
    random: Math.random,
  });
  return { ...verdict, finishedAt };
}

/** Runs a run's target (an HTTP call, or a handler) for its current attempt, within its timeout. */
export async function runTarget(env: Env, run: RunRow): Promise<unknown> {
  const { name, args } = handlerCall(run.target);
  const handler = findHandler(name);
  if (!handler) throw new PermanentError(`unknown handler ${name}`);
  const parsed = handler.args.safeParse(args);
  if (!parsed.success) throw new PermanentError(`invalid arguments for handler ${handler.name}`);
  const timeoutMs = run.timeout * 1000;
  const controller = new AbortController();
  const ctx: HandlerContext = { env, runId: run.id, attempt: run.attempt, requestId: run.requestId, signal: controller.signal };
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The race guarantees the timeout even for a handler that ignores its signal.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new RetryableError(`timed out after ${run.timeout} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([handler.run(parsed.data, ctx), timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
