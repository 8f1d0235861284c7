import { afterEach, vi } from "vitest";
import { MAX_REDELIVERIES } from "../../src/execution/redelivery";
import { deliverBatch } from "./faults";
import { DEAD_LETTER_QUEUE, type Harness, type RunMessage } from "./runs";

/** How long the outages of test/faults/outage.test.ts last. */
export const OUTAGE_MS = 15 * 60_000;

/** Where the last simulated clock of this test file stopped: time never runs backwards between its tests. */
let simulatedUntil = 0;

/**
 * A simulated clock: Date, in the tests and in the Worker (they share the
 * isolate), runs on from where it is set, and jumps when the queue's delays
 * or a client's Retry-After say time passes. It starts a minute after the
 * previous test's clock stopped (D1 keeps the heartbeat of earlier tests),
 * and is restored after each test.
 */
export function simulatedClock(): { advance(ms: number): void; now(): number } {
  const start = Math.max(Date.now(), simulatedUntil + 60_000);
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(start);
  return {
    advance: (ms) => vi.setSystemTime(Date.now() + ms),
    now: () => Date.now(),
  };
}
afterEach(() => {
  simulatedUntil = Math.max(simulatedUntil, Date.now());
  vi.useRealTimers();
});

/** One message on its way, as the queue keeps it. */
interface InFlight {
  id: string;
  queue: string;
  body: RunMessage;
  /** The queue's delivery count: 1 on the first delivery. */
  attempts: number;
  /** When it is delivered next (simulated clock). */
  dueAt: number;
}

/** What a message went through. */
export interface MessageHistory {
  queue: string;
  body: RunMessage;
  /** How many times it was delivered. */
  deliveries: number;
  /** The delay the consumer asked for each time it asked for the message back. */
  delays: number[];
}

/**
 * The platform around the Worker during an outage, over a harness's recording
 * queues: every message the Worker sends is delivered (through the Worker's
 * real queue entry point) once its delay has passed on the simulated clock; a
 * message the consumer asks back for comes back after the delay it asked for,
 * with `attempts` one higher, until `max_retries` (MAX_REDELIVERIES, which
 * test/core/redelivery.test.ts holds to wrangler.toml) sends it to the
 * dead-letter queue; the Cron Trigger ticks every simulated minute (a tick
 * that throws, as it does while D1 is down, changes nothing). `heal` ends the
 * outage once the clock passes `healAt`.
 */
export class OutagePlatform {
  private readonly inFlight: InFlight[] = [];
  private seen = 0;
  private healed = false;
  private nextTick: number;
  private counter = 0;
  /** Every message, by id, with what it went through. */
  readonly history = new Map<string, MessageHistory>();
  /** Messages that exhausted their retries (the dead-letter queue's own included, which are then deleted). */
  readonly deadLettered: RunMessage[] = [];
  /** Heartbeat ticks that ran, those that threw, and those that ran after the outage ended. */
  readonly ticks = { ran: 0, threw: 0, afterHeal: 0 };

  constructor(
    private readonly h: Harness,
    private readonly clock: { advance(ms: number): void; now(): number },
    private readonly outage: { healAt: number; heal: () => void },
    /** Whether the Cron Trigger ticks (off: only the queue can recover anything). */
    private readonly cron = true,
  ) {
    this.seen = h.sent.length;
    this.nextTick = Math.ceil(clock.now() / 60_000) * 60_000;
  }

  /** Puts a message the Worker already sent (before the platform was watching) on its way now. */
  enqueue(queue: string, body: RunMessage): void {
    this.push(queue, body, 1, this.clock.now());
  }

  /** One heartbeat tick now: the Cron Trigger had been ticking before the outage. */
  async heartbeat(): Promise<void> {
    await this.h.tick();
    this.ticks.ran++;
  }

  /** Whether the outage has ended. */
  get isHealed(): boolean {
    return this.healed;
  }

  /** Runs the platform until no message is left on its way (or `maxSteps` deliveries), and past the outage's end. */
  async run(maxSteps = 400): Promise<void> {
    for (let step = 0; step < maxSteps; step++) {
      this.collectSends();
      const next = this.inFlight.sort((a, b) => a.dueAt - b.dueAt).shift();
      if (!next) {
        if (this.healed) return;
        await this.advanceTo(this.outage.healAt);
        continue;
      }
      await this.advanceTo(next.dueAt);
      await this.deliver(next);
    }
    throw new Error(`the platform was still delivering after ${maxSteps} deliveries`);
  }

  private push(queue: string, body: RunMessage, attempts: number, dueAt: number, id = `m${this.counter++}`): void {
    this.inFlight.push({ id, queue, body, attempts, dueAt });
    if (!this.history.has(id)) this.history.set(id, { queue, body, deliveries: 0, delays: [] });
  }

  private collectSends(): void {
    for (const sent of this.h.sent.slice(this.seen))
      this.push(sent.queue, sent.body, 1, this.clock.now() + (sent.delaySeconds ?? 0) * 1000);
    this.seen = this.h.sent.length;
  }

  /** Moves the clock to `time`, ticking the heartbeat at each minute it passes and healing the outage when it is over. */
  private async advanceTo(time: number): Promise<void> {
    while (this.cron && this.nextTick <= time) {
      this.moveTo(this.nextTick);
      this.nextTick += 60_000;
      try {
        await this.h.tick();
        this.ticks.ran++;
        if (this.healed) this.ticks.afterHeal++;
      } catch {
        this.ticks.threw++;
      }
      this.collectSends();
    }
    this.moveTo(time);
  }

  private moveTo(time: number): void {
    if (time > this.clock.now()) this.clock.advance(time - this.clock.now());
    if (!this.healed && this.clock.now() >= this.outage.healAt) {
      this.healed = true;
      this.outage.heal();
    }
  }

  private async deliver(message: InFlight): Promise<void> {
    const history = this.history.get(message.id);
    if (history) history.deliveries++;
    const { result, thrown } = await deliverBatch(this.h.env, message.queue, [
      { id: message.id, body: message.body, attempts: message.attempts },
    ]);
    // A throwing handler: the platform retries every message it did not ack, after the queue's own delay.
    const retried =
      result.retryMessages.find((m) => m.msgId === message.id) ??
      (thrown && !result.explicitAcks.includes(message.id) ? { msgId: message.id } : undefined);
    if (!retried) return;
    const delaySeconds = retried.delaySeconds ?? 0;
    history?.delays.push(delaySeconds);
    if (message.attempts > MAX_REDELIVERIES) {
      this.deadLettered.push(message.body);
      // The dead-letter queue has no dead-letter queue of its own: past its retries a message is deleted.
      if (message.queue !== DEAD_LETTER_QUEUE) this.push(DEAD_LETTER_QUEUE, message.body, 1, this.clock.now());
      return;
    }
    this.push(message.queue, message.body, message.attempts + 1, this.clock.now() + delaySeconds * 1000, message.id);
  }
}
