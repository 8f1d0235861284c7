import { describe, expect, it } from "vitest";
import { RunningAttempts } from "../../src/execution/running-attempts";

const later = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("RunningAttempts", () => {
  it("with no attempt running, results go at once", async () => {
    const running = new RunningAttempts(1_000);
    const started = Date.now();
    await running.settled();
    expect(Date.now() - started).toBeLessThan(50);
  });

  it("results wait until the last running attempt has ended and handed in its own result", async () => {
    const running = new RunningAttempts(5_000);
    const handedIn: string[] = [];
    const attempt = async (name: string, ms: number) => {
      await running.track(() => later(ms));
      handedIn.push(name);
    };
    const first = attempt("fast", 0);
    const second = attempt("slow", 80);
    await later(10);
    await running.settled();
    expect(handedIn).toEqual(["fast", "slow"]);
    await Promise.all([first, second]);
  });

  it("results wait at most maxWaitMs for an attempt that is still running", async () => {
    const running = new RunningAttempts(50);
    const slow = running.track(() => later(1_000));
    const started = Date.now();
    await running.settled();
    expect(Date.now() - started).toBeLessThan(900);
    await slow;
  });

  it("an attempt that throws still counts as ended", async () => {
    const running = new RunningAttempts(5_000);
    await expect(running.track(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    const started = Date.now();
    await running.settled();
    expect(Date.now() - started).toBeLessThan(50);
  });
});
