/**
 * The per-host guard's decisions as pure functions: a circuit breaker
 * (closed -> open after N consecutive failures -> half-open after a cool-down,
 * when a single probe decides), an optional concurrency cap, and an optional
 * rate limit that spreads a burst over time by reserving future slots instead
 * of failing it. Deferring never spends one of the run's attempts.
 */
export interface HostPolicy {
  failure_threshold: number;
  cooldown: number;
  rate_limit?: { requests: number; period: number } | undefined;
  max_concurrency?: number | undefined;
}

export const DEFAULT_POLICY: HostPolicy = { failure_threshold: 5, cooldown: 30 };

export interface HostState {
  circuit: "closed" | "open" | "half_open";
  failures: number;
  openedAt: number | null;
  probe: { runId: string; expires: number } | null;
  /** Runs holding a slot, with when their hold lapses (a vanished consumer must not block the host). */
  inFlight: Record<string, number>;
  /** Calls actually let through within the rate period, ascending. */
  grants: { at: number; runId: string }[];
  /** Future slots promised to deferred runs, ascending: they go before newcomers. */
  reserved: { at: number; runId: string }[];
}

export const INITIAL_STATE: HostState = {
  circuit: "closed",
  failures: 0,
  openedAt: null,
  probe: null,
  inFlight: {},
  grants: [],
  reserved: [],
};

export type DeferReason = "circuit_open" | "probe_in_flight" | "max_concurrency" | "rate_limit";

export type Acquire =
  | { allowed: true; state: HostState }
  | { allowed: false; until: number; reason: DeferReason; message: string; state: HostState };

/** A run that is due within this much of its reserved slot may start. */
const SLOT_TOLERANCE_MS = 1_000;
const RESERVATION_GRACE_MS = 10_000;
/** How long a deferred run waits before asking again when no better time is known. */
const RETRY_SOON_MS = 1_000;

/**
 * The span a rate limit counts calls over: its period, plus a margin. Calls let through together
 * reach the host a little apart (connections, a busy consumer), so windows exactly one period
 * apart can land closer than a period at the host; the margin keeps `requests` per period true there.
 */
export function rateWindowMs(period: number): number {
  const periodMs = period * 1000;
  return periodMs + Math.min(Math.max(RATE_MARGIN_MIN_MS, periodMs / 10), RATE_MARGIN_MAX_MS);
}
const RATE_MARGIN_MIN_MS = 150;
const RATE_MARGIN_MAX_MS = 1_000;

function pruned(state: HostState, policy: HostPolicy, now: number): HostState {
  const inFlight = Object.fromEntries(Object.entries(state.inFlight).filter(([, expires]) => expires > now));
  const periodMs = policy.rate_limit ? rateWindowMs(policy.rate_limit.period) : 0;
  const grants = state.grants.filter((g) => g.at > now - periodMs);
  // A reservation nobody came back for (a cancelled run) lapses; the grace covers queue delays,
  // which are whole seconds, so a run that returns a little late keeps its place in line.
  const reserved = (state.reserved ?? []).filter((r) => r.at > now - periodMs - RESERVATION_GRACE_MS);
  const probe = state.probe && state.probe.expires > now ? state.probe : null;
  return { ...state, inFlight, grants, reserved, probe };
}

/** Decides whether run `runId` may call the host now, or until when it waits, and why. */
export function acquire(current: HostState, policy: HostPolicy, runId: string, now: number, holdMs: number, host: string): Acquire {
  let state = pruned(current, policy, now);
  if (state.inFlight[runId] !== undefined) return { allowed: true, state }; // a repeated ask by the same run
  const defer = (until: number, reason: DeferReason, message: string): Acquire => ({ allowed: false, until, reason, message, state });

  if (state.circuit === "open") {
    const reopensAt = (state.openedAt ?? now) + policy.cooldown * 1000;
    if (now < reopensAt)
      return defer(
        reopensAt,
        "circuit_open",
        `circuit open for ${host} after ${state.failures} consecutive failures; next probe at ${new Date(reopensAt).toISOString()}`,
      );
    state = { ...state, circuit: "half_open", probe: null };
  }
  if (state.circuit === "half_open") {
    if (state.probe && state.probe.runId !== runId)
      return defer(now + RETRY_SOON_MS * 2, "probe_in_flight", `circuit half-open for ${host}: waiting for the probe run to succeed`);
    state = { ...state, probe: { runId, expires: now + holdMs } };
  }
  if (policy.max_concurrency !== undefined && Object.keys(state.inFlight).length >= policy.max_concurrency) {
    return defer(now + RETRY_SOON_MS, "max_concurrency", `${policy.max_concurrency} requests to ${host} already in flight`);
  }
  if (policy.rate_limit) {
    const { requests, period } = policy.rate_limit;
    const periodMs = rateWindowMs(period);
    const mine = state.reserved.find((r) => r.runId === runId);
    const others = state.reserved.filter((r) => r.runId !== runId);
    // Reservations only order the queue; the window of calls actually let through enforces the rate,
    // so a run may start a little before its slot (queue delays are whole seconds) without breaking it.
    const due = mine ? mine.at <= now + SLOT_TOLERANCE_MS : others.length === 0;
    if (!(due && state.grants.length < requests)) {
      const windowFrees = state.grants.length >= requests ? (state.grants[state.grants.length - requests]?.at ?? now) + periodMs : now + 1;
      let slot: number;
      if (mine) {
        slot = mine.at > now + SLOT_TOLERANCE_MS ? mine.at : Math.max(now + 1, windowFrees); // keeps its place in line
      } else {
        // A newcomer queues behind every promised slot, at the first time the window has room.
        const taken = [...state.grants, ...others].sort((a, b) => a.at - b.at);
        const boundary = taken.length >= requests ? (taken[taken.length - requests]?.at ?? now) + periodMs : now + 1;
        slot = Math.max(now + 1, others[others.length - 1]?.at ?? now, boundary);
      }
      state = { ...state, reserved: [...others, { at: slot, runId }].sort((a, b) => a.at - b.at) };
      return { ...defer(slot, "rate_limit", `rate limit ${requests} per ${period}s for ${host}: next slot reserved`), state };
    }
    state = { ...state, reserved: others, grants: [...state.grants, { at: now, runId }] };
  }
  return { allowed: true, state: { ...state, inFlight: { ...state.inFlight, [runId]: now + holdMs } } };
}

export type CallOutcome = "healthy" | "failure" | "not_called";

/** Records how a call went: failures open the circuit; a healthy answer (any non-retryable status) closes it. */
export function release(current: HostState, policy: HostPolicy, runId: string, outcome: CallOutcome, now: number): HostState {
  const { [runId]: _released, ...inFlight } = current.inFlight;
  const state = { ...current, inFlight, probe: current.probe?.runId === runId ? null : current.probe };
  if (outcome === "not_called") return state;
  if (outcome === "healthy") return { ...state, circuit: "closed", failures: 0, openedAt: null };
  const failures = state.failures + 1;
  const reopen = current.circuit === "half_open" || failures >= policy.failure_threshold;
  return reopen ? { ...state, failures, circuit: "open", openedAt: now } : { ...state, failures };
}
