import { describe, expect, it } from "vitest";
import { acquire, type HostPolicy, type HostState, INITIAL_STATE, rateWindowMs, release } from "../../src/hosts/policy";

const HOLD = 60_000;
const policy: HostPolicy = { failure_threshold: 3, cooldown: 30 };

function fail(state: HostState, p: HostPolicy, runId: string, now: number): HostState {
  const a = acquire(state, p, runId, now, HOLD, "h");
  expect(a.allowed).toBe(true);
  return release(a.state, p, runId, "failure", now);
}

describe("host circuit breaker", () => {
  it("opens after N consecutive failures and defers until the cool-down ends", () => {
    let s = INITIAL_STATE;
    for (let i = 0; i < 3; i++) s = fail(s, policy, `r${i}`, 1000 + i);
    expect(s.circuit).toBe("open");
    const a = acquire(s, policy, "next", 5000, HOLD, "h");
    expect(a.allowed).toBe(false);
    if (!a.allowed) {
      expect(a.reason).toBe("circuit_open");
      expect(a.until).toBe(1002 + 30_000);
    }
  });

  it("a success between failures resets the count", () => {
    let s = fail(fail(INITIAL_STATE, policy, "a", 1), policy, "b", 2);
    const ok = acquire(s, policy, "c", 3, HOLD, "h");
    s = release(ok.state, policy, "c", "healthy", 3);
    s = fail(fail(s, policy, "d", 4), policy, "e", 5);
    expect(s.circuit).toBe("closed");
  });

  it("after the cool-down lets exactly one probe through; its success closes the circuit", () => {
    let s = INITIAL_STATE;
    for (let i = 0; i < 3; i++) s = fail(s, policy, `r${i}`, 0);
    const probe = acquire(s, policy, "probe", 31_000, HOLD, "h");
    expect(probe.allowed).toBe(true);
    const other = acquire(probe.state, policy, "other", 31_001, HOLD, "h");
    expect(other.allowed).toBe(false);
    if (!other.allowed) expect(other.reason).toBe("probe_in_flight");
    s = release(probe.state, policy, "probe", "healthy", 31_500);
    expect(s.circuit).toBe("closed");
    expect(acquire(s, policy, "other", 31_600, HOLD, "h").allowed).toBe(true);
  });

  it("a failed probe opens the circuit again for another cool-down", () => {
    let s = INITIAL_STATE;
    for (let i = 0; i < 3; i++) s = fail(s, policy, `r${i}`, 0);
    const probe = acquire(s, policy, "probe", 31_000, HOLD, "h");
    s = release(probe.state, policy, "probe", "failure", 31_200);
    expect(s.circuit).toBe("open");
    expect(s.openedAt).toBe(31_200);
  });
});

describe("host rate limit and concurrency", () => {
  it("spreads a burst into reserved slots so no window of `period` holds more than `requests`", () => {
    const p: HostPolicy = { ...policy, rate_limit: { requests: 5, period: 1 } };
    let s = INITIAL_STATE;
    const starts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const a = acquire(s, p, `r${i}`, 0, HOLD, "h");
      s = a.state;
      starts.push(a.allowed ? 0 : a.until);
    }
    expect(starts.filter((t) => t === 0)).toHaveLength(5);
    // Windows are a period plus a margin apart, for the spread between the guard's answers and the calls reaching the host.
    const window = rateWindowMs(1);
    expect(window).toBeGreaterThan(1000);
    expect(Math.max(...starts)).toBe(3 * window);
    for (const t of starts) expect(starts.filter((u) => u > t - window && u <= t).length).toBeLessThanOrEqual(5);
    // A run that comes back at its reserved slot is let through without a new reservation.
    const back = acquire(s, p, "r7", window, HOLD, "h");
    expect(back.allowed).toBe(true);
  });

  it("caps calls in flight, and a released run frees its slot", () => {
    const p: HostPolicy = { ...policy, max_concurrency: 2 };
    const a = acquire(INITIAL_STATE, p, "a", 0, HOLD, "h");
    const b = acquire(a.state, p, "b", 0, HOLD, "h");
    const c = acquire(b.state, p, "c", 0, HOLD, "h");
    expect(c.allowed).toBe(false);
    if (!c.allowed) expect(c.reason).toBe("max_concurrency");
    const freed = release(b.state, p, "a", "healthy", 1);
    expect(acquire(freed, p, "c", 2, HOLD, "h").allowed).toBe(true);
  });

  it("a vanished caller's hold lapses, so the host is never blocked forever", () => {
    const p: HostPolicy = { ...policy, max_concurrency: 1 };
    const a = acquire(INITIAL_STATE, p, "a", 0, 1000, "h");
    expect(acquire(a.state, p, "b", 500, HOLD, "h").allowed).toBe(false);
    expect(acquire(a.state, p, "b", 1500, HOLD, "h").allowed).toBe(true);
  });
});
