import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { log, useLogLevel } from "../log";
import {
  acquire,
  type CallOutcome,
  DEFAULT_POLICY,
  type DeferReason,
  type HostPolicy,
  type HostState,
  INITIAL_STATE,
  release,
} from "./policy";

const COUNT_WRITE_INTERVAL_MS = 5_000;
/**
 * How long a caller may skip asking about a host whose circuit is closed and
 * that has no rate limit or concurrency cap (acquire would only say yes).
 * Every call's report answers with the current pass, so an isolate learns of
 * an opened circuit or a new cap from its next reported call; a new policy
 * reaches every caller within this time. Callers renew a pass in its second
 * half (guard-client.ts), so a host called every few seconds is never asked
 * on a call's path.
 */
export const FREE_PASS_MS = 10_000;

/** The guard's answer: go, or wait until `until` for `reason`; `freeUntil` says until when callers need not ask. */
export interface GuardAnswer {
  allowed: boolean;
  until: number | null;
  reason: DeferReason | null;
  message: string | null;
  freeUntil: number | null;
}

import type { HostStatus } from "./schema";

/**
 * One per outbound host: the circuit breaker, concurrency cap and rate limit
 * for every run that calls it. Single-threaded, so the decisions are exact.
 * Its circuit state and deferral counts are mirrored to D1 for /metrics.
 */
export class HostGuard extends DurableObject<Env> {
  private state: HostState = INITIAL_STATE;
  private policy: HostPolicy = DEFAULT_POLICY;
  private host = "";
  private deferrals = { circuit: 0, concurrency: 0, rateLimit: 0 };
  private lastCountWrite = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    useLogLevel(env.LOG_LEVEL);
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<unknown>(["state", "policy", "host"]);
      this.state = (stored.get("state") as HostState | undefined) ?? INITIAL_STATE;
      this.policy = (stored.get("policy") as HostPolicy | undefined) ?? DEFAULT_POLICY;
      this.host = (stored.get("host") as string | undefined) ?? "";
    });
  }

  /**
   * Asks to call the host for some runs (a queue batch's runs for this host, in
   * one round trip); each answer, in order, says go, or until when to wait and why.
   */
  async acquireMany(host: string, requests: { runId: string; holdMs: number }[]): Promise<GuardAnswer[]> {
    const before = this.state.circuit;
    const answers: GuardAnswer[] = [];
    const deferred: DeferReason[] = [];
    // The guard's own clock, not the callers' (read before their claim's round trip):
    // a rate window built from such stale times lets too many through.
    const now = Date.now();
    for (const { runId, holdMs } of requests) {
      const decision = acquire(this.state, this.policy, runId, now, holdMs, host);
      this.state = decision.state;
      if (decision.allowed) answers.push({ allowed: true, until: null, reason: null, message: null, freeUntil: this.freeUntil(now) });
      else {
        deferred.push(decision.reason);
        answers.push({ allowed: false, until: decision.until, reason: decision.reason, message: decision.message, freeUntil: null });
      }
    }
    await this.learnHost(host);
    if (this.decidesOnState() || this.state.circuit !== before || deferred.length > 0) await this.ctx.storage.put("state", this.state);
    if (this.state.circuit !== before) await this.mirror(now);
    for (const reason of deferred) this.tallyDeferral(reason);
    if (deferred.length > 0) await this.flushCounts();
    return answers;
  }

  /** Reports how the calls went (or that they were not made); answers until when callers need not ask. */
  async releaseMany(releases: { runId: string; outcome: CallOutcome }[]): Promise<number | null> {
    const prior = this.state;
    const before = prior.circuit;
    const now = Date.now();
    for (const { runId, outcome } of releases) this.state = release(this.state, this.policy, runId, outcome, now);
    const counted = this.state.circuit !== before || this.state.failures !== prior.failures || this.state.probe !== prior.probe;
    if (this.decidesOnState() || counted) await this.ctx.storage.put("state", this.state);
    await this.flushCounts();
    if (this.state.circuit !== before) {
      log(this.state.circuit === "open" ? "warn" : "info", "host_circuit", {
        host: this.host,
        circuit: this.state.circuit,
        failures: this.state.failures,
      });
      await this.mirror(now);
    }
    return this.freeUntil(now);
  }

  /**
   * Whether the runs in flight and the calls granted decide anything: a cap, a rate limit, or a
   * circuit that is not closed. Otherwise an acquire or a release that changes no failure count
   * only notes a run in flight, which stays in memory and costs no storage write before the answer.
   */
  private decidesOnState(): boolean {
    return this.policy.rate_limit !== undefined || this.policy.max_concurrency !== undefined || this.state.circuit !== "closed";
  }

  /** A closed circuit with no cap and no rate limit lets every call through: callers may skip asking for a while. */
  private freeUntil(now: number): number | null {
    return this.decidesOnState() ? null : now + FREE_PASS_MS;
  }

  /** Learns its host's name ahead of the first call (a job that will call the host was created); answers the free pass. */
  async introduce(host: string): Promise<number | null> {
    await this.learnHost(host);
    return this.freeUntil(Date.now());
  }

  private async learnHost(host: string): Promise<void> {
    if (this.host) return;
    this.host = host;
    // The name only labels the host's status; it is learned again from the next call if lost.
    await this.ctx.storage.put("host", host, { allowUnconfirmed: true });
  }

  /** Sets the host's policy (PUT /v1/hosts/:host). */
  async configure(host: string, policy: HostPolicy): Promise<HostStatus> {
    this.host = host;
    this.policy = policy;
    await this.ctx.storage.put({ policy, host });
    await this.mirror(Date.now());
    return this.status();
  }

  /** The host's policy and state. */
  async status(): Promise<HostStatus> {
    return {
      host: this.host,
      policy: this.policy,
      circuit: this.state.circuit,
      consecutive_failures: this.state.failures,
      opened_at: this.state.openedAt === null ? null : new Date(this.state.openedAt).toISOString(),
      in_flight: Object.keys(this.state.inFlight).length,
      reserved_slots: this.state.grants.filter((g) => g.at > Date.now()).length,
    };
  }

  private async mirror(now: number): Promise<void> {
    await this.env.DB.prepare(
      `INSERT INTO host_guards (host, circuit, consecutive_failures, opened_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (host) DO UPDATE SET circuit = excluded.circuit, consecutive_failures = excluded.consecutive_failures, opened_at = excluded.opened_at, updated_at = excluded.updated_at`,
    )
      .bind(this.host, this.state.circuit, this.state.failures, this.state.openedAt, now)
      .run();
  }

  private tallyDeferral(reason: DeferReason): void {
    const key = reason === "max_concurrency" ? "concurrency" : reason === "rate_limit" ? "rateLimit" : "circuit";
    this.deferrals[key]++;
  }

  /** Deferrals are counted in memory and written to D1 at most every few seconds: a burst defers many runs at once. */
  private async flushCounts(): Promise<void> {
    const pending = this.deferrals.circuit + this.deferrals.concurrency + this.deferrals.rateLimit;
    if (pending === 0 || Date.now() - this.lastCountWrite < COUNT_WRITE_INTERVAL_MS) return;
    this.lastCountWrite = Date.now();
    const { circuit, concurrency, rateLimit } = this.deferrals;
    this.deferrals = { circuit: 0, concurrency: 0, rateLimit: 0 };
    await this.env.DB.prepare(
      `INSERT INTO host_guards (host, circuit, consecutive_failures, opened_at, updated_at, deferred_circuit, deferred_concurrency, deferred_rate_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (host) DO UPDATE SET deferred_circuit = deferred_circuit + excluded.deferred_circuit,
         deferred_concurrency = deferred_concurrency + excluded.deferred_concurrency,
         deferred_rate_limit = deferred_rate_limit + excluded.deferred_rate_limit, updated_at = excluded.updated_at`,
    )
      .bind(this.host, this.state.circuit, this.state.failures, this.state.openedAt, Date.now(), circuit, concurrency, rateLimit)
      .run();
  }
}
