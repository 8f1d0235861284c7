import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { type ReceivedRequest, received, receiverUrl } from "../helpers/receiver";
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

const CREDENTIALS = { authorization: "Bearer target-secret", cookie: "session=target-cookie", "proxy-authorization": "Basic dGFyZ2V0" };
const OWN_HEADERS = { ...CREDENTIALS, "x-api-key": "target-api-key", "x-env": "prod" };

/**
 * Runs one signed task whose target answers `status` with a redirect to `to`;
 * returns what the first and the redirected-to URL received.
 */
async function followRedirect(status: number, to: { url: string; prefix: string }, target: Record<string, unknown> = {}) {
  const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
  const first = receiverUrl(`redirect_status=${status}&redirect_to=${encodeURIComponent(to.url)}`);
  const run = await h.enqueue({ target: { type: "http", url: first.url, headers: OWN_HEADERS, body: { hello: "world" }, ...target } });
  await h.redeliver(h.lastSent(run.id));
  expect((await mustStoredRun(run.id)).status).toBe("succeeded");
  const [origin] = await received(first.prefix);
  const hops = await received(to.prefix);
  expect(hops).toHaveLength(1);
  return { run, origin, hop: hops[0] as ReceivedRequest };
}

function expectNoneOf(headers: Record<string, string>, names: string[]): void {
  expect(names.filter((name) => headers[name] !== undefined)).toEqual([]);
}

describe("queue: redirects to another origin", () => {
  it.each([302, 307])("after a %i the other origin gets none of the target's headers and no signature", async (status) => {
    const { origin, hop } = await followRedirect(status, receiverUrl());
    expect(origin?.headers["x-api-key"]).toBe("target-api-key");
    expect(new Webhook(SECRET).verify(origin?.body ?? "", origin?.headers ?? {})).toEqual({ hello: "world" });
    expectNoneOf(hop.headers, [...Object.keys(OWN_HEADERS), ...SIGNATURE_HEADERS]);
  });

  it("after a 307 the other origin still gets the body, its content type and the request id", async () => {
    const { run, hop } = await followRedirect(307, receiverUrl());
    expect([hop.method, JSON.parse(hop.body)]).toEqual(["POST", { hello: "world" }]);
    expect(hop.headers["content-type"]).toBe("application/json");
    expect(hop.headers["x-request-id"]).toBe(run.request_id);
  });

  it("after a 302 the other origin gets a GET with neither body nor content type", async () => {
    const { hop } = await followRedirect(302, receiverUrl());
    expect([hop.method, hop.body, hop.headers["content-type"]]).toEqual(["GET", "", undefined]);
  });

  it("headers the target names in forward_headers follow to the other origin, and only those", async () => {
    const { hop } = await followRedirect(307, receiverUrl(), { forward_headers: ["X-Api-Key"] });
    expect(hop.headers["x-api-key"]).toBe("target-api-key");
    expectNoneOf(hop.headers, ["x-env", ...Object.keys(CREDENTIALS), ...SIGNATURE_HEADERS]);
  });

  it("a chain that leaves the target's origin is not signed again when it comes back", async () => {
    const back = receiverUrl();
    const home = { url: `${back.url.replace(/\/hook$/, "/back")}`, prefix: `${back.prefix}/back` };
    const away = receiverUrl(`redirect_status=307&redirect_to=${encodeURIComponent(home.url)}`);
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const start = `${back.url}?redirect_status=307&redirect_to=${encodeURIComponent(away.url)}`;
    const run = await h.enqueue({ target: { type: "http", url: start, headers: OWN_HEADERS, body: { a: 1 } } });
    await h.redeliver(h.lastSent(run.id));

    expect((await mustStoredRun(run.id)).status).toBe("succeeded");
    const [returned] = await received(home.prefix);
    expect(returned?.method).toBe("POST");
    expectNoneOf(returned?.headers ?? {}, [...Object.keys(OWN_HEADERS), ...SIGNATURE_HEADERS]);
  });
});

describe("queue: redirects on the target's own origin", () => {
  it("keep the target's headers and are signed again, so the receiver verifies every hop", async () => {
    const h = harness({ WEBHOOK_SIGNING_SECRET: SECRET });
    const { url, prefix } = receiverUrl();
    const next = url.replace(/\/hook$/, "/next");
    const run = await h.enqueue({
      target: {
        type: "http",
        url: `${url}?redirect_status=307&redirect_to=${encodeURIComponent(next)}`,
        headers: OWN_HEADERS,
        body: { b: 2 },
      },
    });
    await h.redeliver(h.lastSent(run.id));

    const got = await received(prefix);
    expect(got.map((r) => new URL(r.url).pathname)).toEqual([`${prefix}/hook`, `${prefix}/next`]);
    for (const request of got) {
      expect(request.headers).toMatchObject(OWN_HEADERS);
      expect(new Webhook(SECRET).verify(request.body, request.headers)).toEqual({ b: 2 });
      expect(request.headers["webhook-id"]).toBe(run.id);
    }
  });
});
