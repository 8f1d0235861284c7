import { type Db, database } from "../db/client";
import type { Env } from "../env";
import { hasFreePass, hostGuard, noteFreePass } from "../hosts/guard-client";
import type { GuardAnswer } from "../hosts/host-guard";
import type { CallOutcome } from "../hosts/policy";
import type { AttemptOutcome, RunRow } from "../runs/store";
import { claimRuns, finishAttempts, getRuns } from "../runs/store-batch";
import { Coalescer } from "./coalescer";

/**
 * The reads and writes the executor makes for one message. A queue batch
 * gets one RunIo for all its messages, so steps they reach together share one
 * D1 round trip (a batch of conditional UPDATEs, each still checked on its
 * own) and one HostGuard call per host.
 */
export interface RunIo {
  readonly db: Db;
  getRun(id: string): Promise<RunRow | undefined>;
  claimRun(id: string, attempt: number, now: number): Promise<RunRow | undefined>;
  finishAttempt(run: RunRow, outcome: AttemptOutcome, now: number): Promise<RunRow | undefined>;
  acquireHost(host: string, runId: string, now: number, holdMs: number): Promise<GuardAnswer>;
  releaseHost(host: string, runId: string, outcome: CallOutcome): Promise<void>;
  /** How many attempts this RunIo recorded, by the status each ended in. */
  readonly ended: Partial<Record<AttemptOutcome["status"], number>>;
}

/** What a free pass answers without a round trip. */
const FREE: GuardAnswer = { allowed: true, until: null, reason: null, message: null, freeUntil: null };

export function batchedRunIo(env: Env): RunIo {
  const db = database(env.DB);
  const loads = new Coalescer<string, RunRow | undefined>(async (ids) => {
    const found = new Map((await getRuns(db, [...new Set(ids)])).map((run) => [run.id, run]));
    return ids.map((id) => found.get(id));
  });
  const claims = new Coalescer((items: { id: string; attempt: number; now: number }[]) => claimRuns(db, items));
  const finishes = new Coalescer((items: { run: RunRow; outcome: AttemptOutcome; now: number }[]) => finishAttempts(db, items));
  const acquires = new Map<string, Coalescer<{ runId: string; holdMs: number }, GuardAnswer>>();
  const releases = new Map<string, Coalescer<{ runId: string; outcome: CallOutcome }, number | null>>();
  const perHost = <T>(map: Map<string, T>, host: string, make: () => T): T => {
    let value = map.get(host);
    if (value === undefined) {
      value = make();
      map.set(host, value);
    }
    return value;
  };
  const ended: RunIo["ended"] = {};
  return {
    db,
    ended,
    getRun: (id) => loads.call(id),
    claimRun: (id, attempt, now) => claims.call({ id, attempt, now }),
    finishAttempt: async (run, outcome, now) => {
      const finished = await finishes.call({ run, outcome, now });
      if (finished) ended[outcome.status] = (ended[outcome.status] ?? 0) + 1;
      return finished;
    },
    acquireHost: async (host, runId, now, holdMs) => {
      if (hasFreePass(host, now)) return FREE;
      const answer = await perHost(
        acquires,
        host,
        () => new Coalescer((items: { runId: string; holdMs: number }[]) => hostGuard(env, host).acquireMany(host, items)),
      ).call({ runId, holdMs });
      noteFreePass(host, answer.freeUntil);
      return answer;
    },
    releaseHost: async (host, runId, outcome) => {
      const freeUntil = await perHost(
        releases,
        host,
        () =>
          new Coalescer(async (items: { runId: string; outcome: CallOutcome }[]) => {
            const until = await hostGuard(env, host).releaseMany(items);
            return items.map(() => until);
          }),
      ).call({ runId, outcome });
      noteFreePass(host, freeUntil);
    },
  };
}
