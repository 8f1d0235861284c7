/**
 * The attempts of one queue batch still calling their targets. A batch's
 * results wait for them, so its finish and host-guard calls are one per owner
 * and per host rather than one per turn in which a response happened to land;
 * never longer than `maxWaitMs`, so a slow target does not hold up the
 * results of the fast ones for long.
 */
export class RunningAttempts {
  private running = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly maxWaitMs: number) {}

  /** Makes an attempt, counted as running until it settles. */
  async track<T>(attempt: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await attempt();
    } finally {
      this.running--;
      if (this.running === 0) this.wake();
    }
  }

  /** Resolves once no attempt is running, or after maxWaitMs. */
  settled(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.maxWaitMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiting.push(done);
    });
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    // A task later, not at once: the last attempt hands in its results in the microtasks that follow.
    if (waiting.length > 0)
      setTimeout(() => {
        for (const done of waiting) done();
      }, 0);
  }
}
