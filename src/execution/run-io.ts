import { type Db, database } from "../db/client";
import type { Env } from "../env";
import { hasFreePass, hostGuard, noteFreePass, noteReported, reportTeachesGuard } from "../hosts/guard-client";
import type { GuardAnswer } from "../hosts/host-guard";
import type { CallOutcome } from "../hosts/policy";
import { ownerOfRun, type RunOwnerRef } from "../ids";
import { jobObject } from "../jobs/present";
import type { ClaimItem, FinishedRun, FinishItem } from "../ledger/run-owner";
import { type AttemptOutcome, expireRun, type RunRow, reclaimExpiredLease, unclaimRun } from "../runs/store";
import { claimRuns, finishAttempts, getRuns } from "../runs/store-batch";
import { isFinal, type RunStatus } from "../runs/transitions";
import { taskShard } from "../tasks/shards";
import { Coalescer } from "./coalescer";
import { onRunFinished } from "./finished";
import { RunningAttempts } from "./running-attempts";

/**
 * The reads and writes the executor makes for one message. A queue batch
 * gets one RunIo for all its messages, so steps they reach together share one
 * call per owner of runs (a JobObject, a task shard; or D1 for runs written
 * before runs moved to their owners) and one HostGuard call per host. Each
 * change is still decided on its own, conditionally, by the owner.
 */
export interface RunIo {
  getRun(id: string): Promise<RunRow | undefined>;
  claimRun(id: string, attempt: number, now: number): Promise<RunRow | undefined>;
  /** Records how an attempt ended; a run that ended is followed up (alerts, callbacks, failure index) before this resolves. */
  finishAttempt(run: RunRow, outcome: AttemptOutcome, now: number): Promise<FinishedRun | undefined>;
  /** Gives back a claim whose attempt could not start, without spending it. */
  unclaimRun(run: RunRow, until: number, reason: string, now: number): Promise<RunRow | undefined>;
  /** Ends a task that expired before its first attempt (followed up). */
  expireRun(run: RunRow, now: number): Promise<RunRow | undefined>;
  /** Takes back an attempt whose lease expired: it retries, or is dead (followed up). */
  reclaimRun(run: RunRow, now: number): Promise<RunRow | undefined>;
  /** Runs an ended run's follow-up again (a redelivered message whose first follow-up failed); idempotent. */
  followUp(run: RunRow): Promise<void>;
  /** Asks the host's guard for a call; `free` when the isolate's free pass answered without asking. */
  acquireHost(host: string, runId: string, now: number, holdMs: number): Promise<GuardAnswer & { free: boolean }>;
  /** Reports how a call went, unless its guard learns nothing from it (see reportTeachesGuard). */
  releaseHost(host: string, runId: string, outcome: CallOutcome, free: boolean): Promise<void>;
  /** Makes an attempt; the results of attempts made together are recorded together (see RunningAttempts). */
  attempt<T>(call: () => Promise<T>): Promise<T>;
  /** How many attempts this RunIo recorded, by the status each ended in. */
  readonly ended: Partial<Record<AttemptOutcome["status"], number>>;
}

/** The calls every owner of runs answers (JobObject and TaskShard share them), keyed by the owner's name. */
interface OwnerCalls {
  getRuns(key: string, ids: string[]): Promise<(RunRow | null)[]>;
  claimRuns(key: string, items: ClaimItem[]): Promise<(RunRow | null)[]>;
  finishRuns(key: string, items: FinishItem[]): Promise<(FinishedRun | null)[]>;
  unclaimRun(key: string, id: string, attempt: number, until: number, reason: string, now: number): Promise<RunRow | null>;
  expireRun(key: string, id: string, now: number): Promise<RunRow | null>;
  reclaimRun(key: string, id: string, now: number): Promise<RunRow | null>;
  cancelRun(key: string, id: string, now: number): Promise<RunRow | null>;
  followUpRuns(key: string, ids: string[]): Promise<void>;
}

/** A run's owner, to call: its stub and the key it answers to; undefined for D1's runs (and unknown ids). */
export function ownerFor(env: Env, runId: string): { name: string; key: string; calls: OwnerCalls } | undefined {
  const ref = ownerOfRun(runId);
  const name = ref && ownerName(ref);
  // RPC stubs cannot express the runs' JSON columns; the shapes are the owners' own.
  if (ref?.kind === "job" && name) return { name, key: ref.jobId, calls: jobObject(env, ref.jobId) as unknown as OwnerCalls };
  if (ref?.kind === "shard" && name) return { name, key: String(ref.shard), calls: taskShard(env, ref.shard) as unknown as OwnerCalls };
  return undefined;
}

/** The name of a run's owner, read from its id alone (no stub made); undefined for D1's runs. */
function ownerName(ref: RunOwnerRef): string | undefined {
  if (ref.kind === "job") return `job:${ref.jobId}`;
  if (ref.kind === "shard") return `shard:${ref.shard}`;
  return undefined;
}

/** What a free pass answers without a round trip. */
const FREE = { allowed: true, until: null, reason: null, message: null, freeUntil: null, free: true } as const;

const orUndefined = <T>(run: T | null | undefined) => run ?? undefined;

/** The longest an attempt's result waits for the other attempts of its batch before it is recorded. */
const RESULTS_WAIT_MS = 250;

export function batchedRunIo(env: Env): RunIo {
  // Made only for D1's runs: a batch of owners' runs never needs the client.
  let client: Db | undefined;
  const db = () => (client ??= database(env.DB));
  const running = new RunningAttempts(RESULTS_WAIT_MS);
  const settled = () => running.settled();
  // D1's runs (written before runs moved to their owners), until they have drained.
  const legacyLoads = new Coalescer<string, RunRow | undefined>(async (ids) => {
    const found = new Map((await getRuns(db(), [...new Set(ids)])).map((run) => [run.id, run]));
    return ids.map((id) => found.get(id));
  });
  const legacyClaims = new Coalescer((items: ClaimItem[]) => claimRuns(db(), items));
  const legacyFinishes = new Coalescer(
    (items: { run: RunRow; outcome: AttemptOutcome; now: number }[]) => finishAttempts(db(), items),
    settled,
  );
  // One coalescer per owner and kind of call: a batch's calls to one owner share a round trip.
  const perOwner = new Map<string, Coalescer<never, unknown>>();
  const coalesced = <Item, Result>(
    kind: string,
    runId: string,
    perform: (owner: NonNullable<ReturnType<typeof ownerFor>>, items: Item[]) => Promise<Result[]>,
    hold?: () => Promise<void>,
  ) => {
    // The owner's stub (a hash of its name) is made once per batch, with its coalescer.
    const ref = ownerOfRun(runId);
    const name = ref && ownerName(ref);
    if (name === undefined) return undefined;
    const id = `${kind}|${name}`;
    let coalescer = perOwner.get(id) as Coalescer<Item, Result> | undefined;
    if (!coalescer) {
      const owner = ownerFor(env, runId);
      if (!owner) return undefined;
      coalescer = new Coalescer<Item, Result>((items) => perform(owner, items), hold);
      perOwner.set(id, coalescer as unknown as Coalescer<never, unknown>);
    }
    return coalescer;
  };
  const ended: RunIo["ended"] = {};
  const count = <T>(outcome: AttemptOutcome, run: T | undefined) => {
    if (run) ended[outcome.status] = (ended[outcome.status] ?? 0) + 1;
    return run;
  };
  const followedUp = async (run: RunRow | undefined) => {
    if (run && isFinal(run.status as RunStatus)) await onRunFinished(env, run);
    return run;
  };
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
  return {
    ended,
    getRun: async (id) => {
      const loads = coalesced("get", id, (o, ids: string[]) => o.calls.getRuns(o.key, ids));
      return loads ? orUndefined(await loads.call(id)) : legacyLoads.call(id);
    },
    claimRun: async (id, attempt, now) => {
      const claims = coalesced("claim", id, (o, items: ClaimItem[]) => o.calls.claimRuns(o.key, items));
      return claims ? orUndefined(await claims.call({ id, attempt, now })) : legacyClaims.call({ id, attempt, now });
    },
    finishAttempt: async (run, outcome, now) => {
      const finishes = coalesced("finish", run.id, (o, items: FinishItem[]) => o.calls.finishRuns(o.key, items), settled);
      if (finishes) return count(outcome, orUndefined(await finishes.call({ id: run.id, attempt: run.attempt, outcome, now })));
      return count(outcome, await followedUp(await legacyFinishes.call({ run, outcome, now })));
    },
    unclaimRun: async (run, until, reason, now) => {
      const owner = ownerFor(env, run.id);
      return owner
        ? orUndefined(await owner.calls.unclaimRun(owner.key, run.id, run.attempt, until, reason, now))
        : unclaimRun(db(), run, until, reason, now);
    },
    expireRun: async (run, now) => {
      const owner = ownerFor(env, run.id);
      return owner ? orUndefined(await owner.calls.expireRun(owner.key, run.id, now)) : followedUp(await expireRun(db(), run, now));
    },
    reclaimRun: async (run, now) => {
      const owner = ownerFor(env, run.id);
      return owner
        ? orUndefined(await owner.calls.reclaimRun(owner.key, run.id, now))
        : followedUp(await reclaimExpiredLease(db(), run, now));
    },
    followUp: async (run) => {
      const owner = ownerFor(env, run.id);
      if (owner) await owner.calls.followUpRuns(owner.key, [run.id]);
      else await onRunFinished(env, run);
    },
    acquireHost: async (host, runId, now, holdMs) => {
      if (hasFreePass(host, now)) return FREE;
      const answer = await perHost(
        acquires,
        host,
        () => new Coalescer((items: { runId: string; holdMs: number }[]) => hostGuard(env, host).acquireMany(host, items)),
      ).call({ runId, holdMs });
      noteFreePass(host, answer.freeUntil);
      return { ...answer, free: false };
    },
    releaseHost: async (host, runId, outcome, free) => {
      if (!reportTeachesGuard(host, outcome, free, Date.now())) return;
      const freeUntil = await perHost(
        releases,
        host,
        () =>
          new Coalescer(async (items: { runId: string; outcome: CallOutcome }[]) => {
            const until = await hostGuard(env, host).releaseMany(items);
            return items.map(() => until);
          }, settled),
      ).call({ runId, outcome });
      noteFreePass(host, freeUntil);
      noteReported(host, outcome);
    },
    attempt: (call) => running.track(call),
  };
}
