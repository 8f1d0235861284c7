import { describe, expect, it } from "vitest";
import { MAX_QUEUE_DELAY_SECONDS } from "../../src/execution/dispatch";
import {
  MAX_REDELIVERIES,
  MAX_REDELIVERY_SECONDS,
  redeliveryDelaySeconds,
  redeliveryWindowSeconds,
  secondsUntilLeaseExpires,
} from "../../src/execution/redelivery";
import wranglerToml from "../../wrangler.toml?raw";

/** Each `[[queues.consumers]]` table of wrangler.toml, as its key = value pairs. */
function queueConsumers(toml: string): Record<string, string>[] {
  return toml
    .split(/^\[\[/m)
    .filter((table) => table.startsWith("queues.consumers]]"))
    .map((table) =>
      Object.fromEntries([...table.matchAll(/^(\w+)\s*=\s*"?([^"\n]*)"?\s*$/gm)].map((m) => [m[1] ?? "", (m[2] ?? "").trim()])),
    );
}

describe("redeliveryDelaySeconds", () => {
  it.each([
    [1, 2],
    [2, 4],
    [3, 8],
    [4, 16],
    [5, 32],
    [6, 64],
    [7, 128],
    [8, 256],
    [9, 300],
    [20, 300],
    [100, 300],
    [1_000_000, 300],
  ])("a message that failed on delivery %i comes back after %i s: doubling from 2 s, at most 5 minutes", (deliveries, seconds) => {
    expect(redeliveryDelaySeconds(deliveries)).toBe(seconds);
  });

  it.each([0, -3, Number.NaN, Number.POSITIVE_INFINITY])("a nonsense delivery count (%s) is treated as the first", (deliveries) => {
    expect(redeliveryDelaySeconds(deliveries)).toBe(2);
  });
});

describe("redeliveryWindowSeconds", () => {
  it("20 retries span 2 + 4 + ... + 256 + 12 x 300 = 4,110 s: over an hour of outage before a dead letter", () => {
    expect(redeliveryWindowSeconds(20)).toBe(510 + 12 * 300);
    expect(redeliveryWindowSeconds()).toBe(4_110);
  });

  it("the configured retries outlast a 15-minute outage at least four times over", () => {
    expect(redeliveryWindowSeconds()).toBeGreaterThan(4 * 15 * 60);
  });
});

describe("wrangler.toml's queue consumers", () => {
  const consumers = queueConsumers(wranglerToml);
  const runQueues = consumers.filter((c) => c.queue !== "taskflare-dead-letter");

  it("the run queues retry MAX_REDELIVERIES times, then dead-letter (the queues allow 100)", () => {
    expect(runQueues.map((c) => c.queue)).toEqual(["taskflare-tasks", "taskflare-tasks-high"]);
    for (const consumer of runQueues) {
      expect(Number(consumer.max_retries)).toBe(MAX_REDELIVERIES);
      expect(consumer.dead_letter_queue).toBe("taskflare-dead-letter");
    }
    expect(MAX_REDELIVERIES).toBeLessThanOrEqual(100);
  });

  it("the dead-letter queue retries as long, on the same back-off", () => {
    const deadLetters = consumers.find((c) => c.queue === "taskflare-dead-letter");
    expect(Number(deadLetters?.max_retries)).toBe(MAX_REDELIVERIES);
  });

  it("every delay stays within the queues' 24-hour limit", () => {
    expect(MAX_REDELIVERY_SECONDS).toBeLessThanOrEqual(86_400);
  });
});

describe("secondsUntilLeaseExpires", () => {
  const now = 1_000_000;
  it.each([
    ["a lease 60 s away", now + 60_000, 61],
    ["a lease 59.2 s away", now + 59_200, 61],
    ["a lease 1 ms away", now + 1, 2],
    ["a lease that just expired", now, 1],
    ["a lease long expired", now - 60_000, 1],
    ["a lease past the queue's delay limit", now + 50 * 3_600_000, MAX_QUEUE_DELAY_SECONDS],
  ])("%s: back in %i s, just after it expires", (_what, leaseExpiresAt, seconds) => {
    expect(secondsUntilLeaseExpires(leaseExpiresAt, now, MAX_QUEUE_DELAY_SECONDS)).toBe(seconds);
  });
});
