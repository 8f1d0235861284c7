import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { received, receiverUrl } from "../helpers/receiver";
import { harness, makeDue, mustStoredRun } from "../helpers/runs";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SIGNATURE_HEADERS = ["webhook-id", "webhook-signature", "webhook-timestamp"];

describe("queue: outbound signatures (Standard Webhooks)", () => {
  it("every attempt is signed so a Standard Webhooks receiver verifies it, with the run id as webhook-id", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl("status=503&fail_times=1");
    const run = await h.enqueue({
      target: { type: "http", url, body: { hello: "world" } },
      retry: { max_attempts: 3, backoff: 1, max_delay: 1 },
    });

    await h.redeliver(h.lastSent(run.id));
    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));

    expect(await mustStoredRun(run.id)).toMatchObject({ status: "succeeded", attempt: 2 });
    const got = await received(prefix);
    expect(got).toHaveLength(2);
    for (const request of got) {
      expect(new Webhook(SECRET).verify(request.body, request.headers)).toEqual({ hello: "world" });
      expect(request.headers["webhook-id"]).toBe(run.id);
    }
  });

  it("a request without a body is signed over the empty body", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", method: "GET", url } });
    await h.redeliver(h.lastSent(run.id));
    const [request] = await received(prefix);
    expect(request?.method).toBe("GET");
    expect(() => new Webhook(SECRET).verify("", request?.headers ?? {})).not.toThrow();
  });

  it("a signature made with another secret does not verify", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url, body: { a: 1 } } });
    await h.redeliver(h.lastSent(run.id));
    const [request] = await received(prefix);
    expect(() => new Webhook("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").verify(request?.body ?? "", request?.headers ?? {})).toThrow();
  });

  it("without a signing secret no signature headers are sent", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: "" });
    const { url, prefix } = receiverUrl();
    const run = await h.enqueue({ target: { type: "http", url } });
    await h.redeliver(h.lastSent(run.id));
    const [request] = await received(prefix);
    expect(request).toBeDefined();
    for (const name of SIGNATURE_HEADERS) expect(request?.headers[name]).toBeUndefined();
  });

  it("every attempt carries the x-request-id of the request that created the run", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl("status=500&fail_times=1");
    const requestId = `req-${crypto.randomUUID()}`;
    const run = await h.enqueue(
      { target: { type: "http", url }, retry: { max_attempts: 2, backoff: 1, max_delay: 1 } },
      { "x-request-id": requestId },
    );

    await h.redeliver(h.lastSent(run.id));
    await makeDue(run.id);
    await h.redeliver(h.lastSent(run.id));

    expect((await mustStoredRun(run.id)).request_id).toBe(requestId);
    expect((await received(prefix)).map((r) => r.headers["x-request-id"])).toEqual([requestId, requestId]);
  });
});

/** A receiver path whose `/__requests` listing is about 1 MB: it echoes the bodies it received. */
async function megabyteResponseUrl(char: string): Promise<string> {
  const prefix = `/t/${crypto.randomUUID()}`;
  const utf8Bytes = new TextEncoder().encode(char).length;
  await fetch(`https://receiver.example.com${prefix}/seed`, { method: "POST", body: char.repeat(Math.ceil(1_000_000 / utf8Bytes)) });
  return `https://receiver.test/__requests?prefix=${encodeURIComponent(prefix)}`;
}

describe("queue: bounded storage", () => {
  it("a 1 MB response body is stored truncated, in under 10 KB", async () => {
    const h = harness();
    const url = await megabyteResponseUrl("x");
    const run = await h.enqueue({ target: { type: "http", method: "GET", url } });
    await h.redeliver(h.lastSent(run.id));

    const stored = await mustStoredRun(run.id);
    expect(stored.status).toBe("succeeded");
    expect(stored.result).toMatchObject({ status: 200 });
    expect(stored.result_bytes).toBeGreaterThan(0);
    expect(stored.result_bytes).toBeLessThan(10 * 1024);
  });

  it("a 1 MB response of multi-byte characters is also stored in under 10 KB", async () => {
    const h = harness();
    const url = await megabyteResponseUrl("€");
    const run = await h.enqueue({ target: { type: "http", method: "GET", url } });
    await h.redeliver(h.lastSent(run.id));

    const stored = await mustStoredRun(run.id);
    expect(stored.status).toBe("succeeded");
    expect(stored.result_bytes).toBeLessThan(10 * 1024);
  });
});
