/** Stored result and error values are capped, so one chatty target cannot bloat D1. */
export const MAX_STORED_BYTES = 8 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The first `maxBytes` bytes of a string's UTF-8 (a split character becomes U+FFFD). */
function utf8Prefix(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text; // a UTF-16 unit is at most 3 bytes of UTF-8
  const bytes = encoder.encode(text);
  return bytes.length <= maxBytes ? text : decoder.decode(bytes.subarray(0, maxBytes));
}

/** Returns the value itself when its JSON fits in `maxBytes` of UTF-8, else a truncated preview. */
export function bounded(value: unknown, maxBytes = MAX_STORED_BYTES): unknown {
  if (value === undefined) return null;
  const json = JSON.stringify(value) ?? "null";
  // A UTF-16 unit is at most 3 bytes of UTF-8: most values fit without being encoded.
  if (json.length * 3 <= maxBytes) return value;
  const size = encoder.encode(json).length;
  if (size <= maxBytes) return value;
  // The preview is re-escaped inside JSON, so leave room for that growth.
  return { truncated: true, bytes: size, preview: utf8Prefix(json, Math.floor(maxBytes / 2)) };
}

/** A plain-text excerpt of at most `maxBytes` bytes of UTF-8. */
export function excerpt(text: string, maxBytes = 2048): string {
  const prefix = utf8Prefix(text, maxBytes);
  return prefix.length === text.length ? text : `${prefix}…[${text.length - prefix.length} more]`;
}
