export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/**
 * A fresh host and path on the receiver for one test, so tests never see each
 * other's requests nor share a host's circuit breaker or rate limit.
 */
export function receiverUrl(query = ""): { url: string; prefix: string; host: string } {
  const id = crypto.randomUUID();
  const prefix = `/t/${id}`;
  const host = `h${id.slice(0, 8)}.receiver.example.com`;
  return { url: `https://${host}${prefix}/hook${query ? `?${query}` : ""}`, prefix, host };
}

/** What the receiver got under a prefix, in arrival order. */
export async function received(prefix: string): Promise<ReceivedRequest[]> {
  const res = await fetch(`https://receiver.test/__requests?prefix=${encodeURIComponent(prefix)}`);
  return res.json();
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
