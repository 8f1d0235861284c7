import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runTarget } from "../../src/execution/run-target";
import type { Target } from "../../src/execution/target-schema";
import { PermanentError } from "../../src/handlers/registry";
import { newRunRow } from "../../src/runs/new-run";
import { received, receiverUrl } from "../helpers/receiver";
import { type Harness, harness, MANUAL_RETRY, mustStoredRun } from "../helpers/runs";

/** Enqueues an HTTP task and delivers its first message; returns the run as stored afterwards. */
async function firstAttempt(h: Harness, target: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const run = await h.enqueue({ target: { type: "http", ...target }, retry: MANUAL_RETRY, ...extra });
  await h.redeliver(h.lastSent(run.id));
  return { stored: await mustStoredRun(run.id), sent: h.sentFor(run.id) };
}

describe("queue: HTTP outcomes by status", () => {
  it.each([200, 201, 202])("a %i answer succeeds at once and stores the response", async (status) => {
    const { url, prefix } = receiverUrl(`status=${status}`);
    const { stored, sent } = await firstAttempt(harness(), { url });
    expect(stored).toMatchObject({ status: "succeeded", attempt: 1, error: null });
    expect(stored.result).toMatchObject({ status, content_type: "application/json" });
    expect(sent).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });

  it.each([408, 429, 500, 502, 503])("a %i answer is retried", async (status) => {
    const { url, prefix } = receiverUrl(`status=${status}`);
    const { stored, sent } = await firstAttempt(harness(), { url });
    expect(stored).toMatchObject({ status: "retrying", attempt: 1 });
    expect(stored.error).toMatchObject({ message: `target answered ${status}`, status });
    expect(sent.map((m) => m.body.attempt)).toEqual([1, 2]);
    expect(await received(prefix)).toHaveLength(1);
  });

  it.each([400, 401, 403, 404, 422])("a %i answer fails at once without a retry", async (status) => {
    const { url, prefix } = receiverUrl(`status=${status}`);
    const { stored, sent } = await firstAttempt(harness(), { url });
    expect(stored).toMatchObject({ status: "failed", attempt: 1 });
    expect(stored.error).toMatchObject({ message: `target answered ${status}`, status });
    expect(stored.finished_at).not.toBeNull();
    expect(sent).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a network error is retried", async () => {
    // The receiver cannot build a response with status 600, so the connection fails.
    const { url } = receiverUrl("status=600");
    const { stored, sent } = await firstAttempt(harness(), { url });
    expect(stored).toMatchObject({ status: "retrying", attempt: 1 });
    expect(JSON.stringify(stored.error)).toContain("network error");
    expect(sent).toHaveLength(2);
  });
});

describe("queue: redirects", () => {
  it("a 302 to a public URL is followed, and a POST becomes a GET without a body", async () => {
    const final = receiverUrl();
    const { url, prefix } = receiverUrl(`redirect_to=${encodeURIComponent(final.url)}`);
    const { stored } = await firstAttempt(harness(), { url, body: { a: 1 } });
    expect(stored).toMatchObject({ status: "succeeded", attempt: 1 });
    expect((await received(prefix)).map((r) => r.method)).toEqual(["POST"]);
    const hop = await received(final.prefix);
    expect(hop.map((r) => [r.method, r.body])).toEqual([["GET", ""]]);
  });

  it("a 307 redirect is followed with the same method and body", async () => {
    const final = receiverUrl();
    const { url } = receiverUrl(`redirect_status=307&redirect_to=${encodeURIComponent(final.url)}`);
    const { stored } = await firstAttempt(harness(), { url, body: { a: 1 } });
    expect(stored.status).toBe("succeeded");
    const hop = await received(final.prefix);
    expect(hop.map((r) => [r.method, JSON.parse(r.body)])).toEqual([["POST", { a: 1 }]]);
  });

  it.each([
    "http://127.0.0.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost:8080/",
    "http://[::1]/",
    "file:///etc/passwd",
  ])("a redirect to %s is refused and fails without a retry", async (location) => {
    const { url, prefix } = receiverUrl(`redirect_to=${encodeURIComponent(location)}`);
    const { stored, sent } = await firstAttempt(harness(), { url });
    expect(stored).toMatchObject({ status: "failed", attempt: 1 });
    expect(JSON.stringify(stored.error)).toContain("refused");
    expect(sent).toHaveLength(1);
    expect(await received(prefix)).toHaveLength(1);
  });

  it("a cross-host redirect does not forward the target's authorization header", async () => {
    const h = harness();
    const elsewhere = `/t/${crypto.randomUUID()}`;
    const { url } = receiverUrl(`redirect_status=307&redirect_to=${encodeURIComponent(`https://elsewhere.example.net${elsewhere}/hook`)}`);
    const run = await h.enqueue({ target: { type: "http", url, headers: { authorization: "Bearer target-secret" } } });
    await h.redeliver(h.lastSent(run.id));
    expect((await mustStoredRun(run.id)).status).toBe("succeeded");
    const [hop] = await received(elsewhere);
    expect(hop).toBeDefined();
    expect(hop?.headers.authorization).toBeUndefined();
  });

  it("a chain of more than five redirects fails", async () => {
    let next = receiverUrl().url;
    for (let hop = 0; hop < 6; hop++) next = receiverUrl(`redirect_to=${encodeURIComponent(next)}`).url;
    const { stored } = await firstAttempt(harness(), { url: next });
    expect(stored.status).toBe("failed");
    expect(JSON.stringify(stored.error)).toContain("redirects");
  });
});

describe("queue: timeouts", () => {
  it("a target that hangs past its timeout ends the attempt as timed out without waiting for it", async () => {
    const h = harness();
    const { url } = receiverUrl("delay_ms=3000");
    const started = Date.now();
    const { stored } = await firstAttempt(h, { url }, { timeout: 1 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(stored).toMatchObject({ status: "retrying", attempt: 1 });
    expect(JSON.stringify(stored.error)).toContain("timed out");
  });

  it("a target that hangs on the last attempt makes the run dead with the timeout error", async () => {
    const h = harness();
    const { url } = receiverUrl("delay_ms=3000");
    const run = await h.enqueue({ target: { type: "http", url }, timeout: 1, retry: { ...MANUAL_RETRY, max_attempts: 1 } });
    const started = Date.now();
    await h.redeliver(h.lastSent(run.id));
    expect(Date.now() - started).toBeLessThan(2500);
    const dead = await mustStoredRun(run.id);
    expect(dead).toMatchObject({ status: "dead", attempt: 1 });
    expect(JSON.stringify(dead.error)).toContain("timed out");
  });
});

describe("queue: the target a run stored", () => {
  const storedRun = (target: unknown) =>
    newRunRow(
      { target: target as Target, dueAt: Date.now(), priority: "default", retry: undefined, timeoutSeconds: 30, requestId: null },
      `tsk001_${crypto.randomUUID()}`,
      Date.now(),
    );

  it("an HTTP target is called with its stored fields", async () => {
    const { url, prefix } = receiverUrl();
    const result = await runTarget(env, { ...storedRun({ type: "http", method: "PUT", url, body: { a: 1 } }), attempt: 1 });
    expect(result).toMatchObject({ status: 200 });
    expect(await received(prefix)).toMatchObject([{ method: "PUT", body: '{"a":1}' }]);
  });

  it.each([
    ["a handler no longer registered", { type: "handler", name: "no-such-handler" }, "unknown handler no-such-handler"],
    ["a target of no known type", { type: "carrier-pigeon" }, "unknown handler"],
    [
      "an HTTP target whose fields are no longer valid",
      { type: "http", method: "POST", url: "https://example.com/x", extra: 1 },
      "invalid arguments for handler http",
    ],
  ])("%s fails for good, without a call", async (_what, target, message) => {
    const attempt = runTarget(env, { ...storedRun(target), attempt: 1 });
    await expect(attempt).rejects.toBeInstanceOf(PermanentError);
    await expect(attempt).rejects.toThrow(message);
  });
});
