/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com) for outbound
 * HTTP targets, so receivers can verify a request came from this scheduler
 * with any Standard Webhooks library.
 *
 * Secret format: `whsec_<base64 key>` as the spec defines, decoded to the key
 * bytes. A secret without the `whsec_` prefix is used as-is: its UTF-8 bytes
 * are the HMAC key. Receivers then need the same raw key (most libraries have
 * a "raw" option); generating a `whsec_` secret avoids the question.
 */

const SECRET_PREFIX = "whsec_";

/** Builds the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for one delivery. */
export async function signatureHeaders(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): Promise<Record<string, string>> {
  // The spec signs whole unix seconds; a fraction or milliseconds would make
  // every receiver reject the delivery, so fail loudly at the caller's bug.
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError(`webhook timestamp must be whole unix seconds, got ${timestampSeconds}`);
  }
  const key = await signingKey(secret);
  const timestamp = String(timestampSeconds);
  const signed = new TextEncoder().encode(`${messageId}.${timestamp}.${body}`);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed));
  return {
    "webhook-id": messageId,
    "webhook-timestamp": timestamp,
    "webhook-signature": `v1,${toBase64(mac)}`,
  };
}

/**
 * Imported keys by secret: a deployment has one secret, and importing it for every delivery
 * costs more than the signature. The key is kept, not the promise of it: a promise is tied to
 * the request that made it.
 */
const importedKeys = new Map<string, CryptoKey>();

async function signingKey(secret: string): Promise<CryptoKey> {
  const known = importedKeys.get(secret);
  if (known) return known;
  const key = await crypto.subtle.importKey("raw", signingKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  importedKeys.set(secret, key);
  return key;
}

/** The HMAC key a configured secret stands for (see the module comment). */
function signingKeyBytes(secret: string): Uint8Array {
  const bytes = secret.startsWith(SECRET_PREFIX) ? fromBase64(secret.slice(SECRET_PREFIX.length)) : new TextEncoder().encode(secret);
  // An empty key would sign with a value anyone can reproduce.
  if (bytes.length === 0) throw new TypeError("webhook signing secret is empty");
  return bytes;
}

function fromBase64(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new TypeError("webhook signing secret after whsec_ is not valid base64");
  }
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
