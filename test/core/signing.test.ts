import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signatureHeaders } from "../../src/execution/signing";

const body = JSON.stringify({ report: "daily", n: 1 });
const messageId = "run_01J9Z6T4ZQ0000000000000000";

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A spec-format secret: `whsec_` plus base64 of 24 random bytes. */
function newSecret(): string {
  const key = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...key))}`;
}

describe("signatureHeaders with a whsec_ secret", () => {
  it("produces headers a Standard Webhooks receiver accepts", async () => {
    const secret = newSecret();
    const headers = await signatureHeaders(secret, messageId, nowSeconds(), body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("produces exactly the three spec headers", async () => {
    const ts = nowSeconds();
    const headers = await signatureHeaders(newSecret(), messageId, ts, body);
    expect(Object.keys(headers).sort()).toEqual(["webhook-id", "webhook-signature", "webhook-timestamp"]);
    expect(headers["webhook-id"]).toBe(messageId);
    expect(headers["webhook-timestamp"]).toBe(String(ts));
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("matches the reference library's signature for the spec's test vector", async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const ts = 1614265330;
    const payload = '{"test": 2432232314}';
    const headers = await signatureHeaders(secret, id, ts, payload);
    expect(headers["webhook-signature"]).toBe(new Webhook(secret).sign(id, new Date(ts * 1000), payload));
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("signs non-ASCII bodies as UTF-8", async () => {
    const secret = newSecret();
    const unicodeBody = JSON.stringify({ city: "臺北", emoji: "🕑" });
    const headers = await signatureHeaders(secret, messageId, nowSeconds(), unicodeBody);
    expect(new Webhook(secret).verify(unicodeBody, headers)).toEqual(JSON.parse(unicodeBody));
  });

  it("is rejected by the receiver when the body is tampered with", async () => {
    const secret = newSecret();
    const headers = await signatureHeaders(secret, messageId, nowSeconds(), body);
    const tampered = JSON.stringify({ report: "daily", n: 2 });
    expect(() => new Webhook(secret).verify(tampered, headers)).toThrow(WebhookVerificationError);
  });

  it("is rejected by the receiver when the message id is swapped", async () => {
    const secret = newSecret();
    const headers = await signatureHeaders(secret, messageId, nowSeconds(), body);
    const swapped = { ...headers, "webhook-id": "run_other" };
    expect(() => new Webhook(secret).verify(body, swapped)).toThrow(WebhookVerificationError);
  });

  it("is rejected by a receiver holding a different secret", async () => {
    const headers = await signatureHeaders(newSecret(), messageId, nowSeconds(), body);
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow(WebhookVerificationError);
  });

  it("is rejected by the receiver when the timestamp is outside its tolerance", async () => {
    const secret = newSecret();
    const headers = await signatureHeaders(secret, messageId, nowSeconds() - 3600, body);
    expect(() => new Webhook(secret).verify(body, headers)).toThrow(WebhookVerificationError);
  });
});

describe("signatureHeaders with a secret lacking the whsec_ prefix", () => {
  it("uses the secret's UTF-8 bytes as the key, which a raw-key receiver accepts", async () => {
    const secret = "plain-secret-ключ";
    const headers = await signatureHeaders(secret, messageId, nowSeconds(), body);
    const receiver = new Webhook(new TextEncoder().encode(secret), { format: "raw" });
    expect(receiver.verify(body, headers)).toEqual(JSON.parse(body));
  });
});

describe("signatureHeaders refuses unusable input", () => {
  it.each([1.5, -1, Number.NaN, Date.now() * 1e6])("a timestamp of %s is refused", async (ts) => {
    await expect(signatureHeaders(newSecret(), messageId, ts, body)).rejects.toThrow(RangeError);
  });

  it("an empty secret is refused", async () => {
    await expect(signatureHeaders("", messageId, nowSeconds(), body)).rejects.toThrow("empty");
    await expect(signatureHeaders("whsec_", messageId, nowSeconds(), body)).rejects.toThrow("empty");
  });

  it("a whsec_ secret that is not base64 is refused", async () => {
    await expect(signatureHeaders("whsec_not*base64!", messageId, nowSeconds(), body)).rejects.toThrow("not valid base64");
  });
});
