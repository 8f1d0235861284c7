/**
 * Gathers the calls made within one turn of the event loop and performs them
 * as one: the messages of a queue batch reach each step at nearly the same
 * moment, so their D1 reads and writes and their host-guard calls share round
 * trips. Each caller still gets its own result. If the shared call fails, each
 * call is tried again on its own, so one bad item cannot fail the others (the
 * operations must be safe to repeat, as conditional updates are).
 */
export class Coalescer<Item, Result> {
  private pending: { item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly performAll: (items: Item[]) => Promise<Result[]>,
    /** Awaited before the gathered calls are performed: more may join meanwhile. */
    private readonly hold?: () => Promise<void>,
  ) {}

  private async performOne(item: Item): Promise<Result> {
    const [result] = await this.performAll([item]);
    return result as Result;
  }

  call(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.timer ??= setTimeout(() => void this.flush(), 0);
    });
  }

  private async flush(): Promise<void> {
    if (this.hold) await this.hold();
    const calls = this.pending;
    this.pending = [];
    this.timer = undefined;
    try {
      const results = await this.performAll(calls.map((c) => c.item));
      for (const [i, c] of calls.entries()) c.resolve(results[i] as Result);
    } catch (error) {
      if (calls.length === 1) {
        calls[0]?.reject(error);
        return;
      }
      await Promise.all(calls.map((c) => this.performOne(c.item).then(c.resolve, c.reject)));
    }
  }
}
