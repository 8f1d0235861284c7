/** Stored result and error values are capped, so one chatty target cannot bloat D1. */
export const MAX_STORED_BYTES = 8 * 1024;

/** Returns the value itself when its JSON fits, else a truncated preview of it. */
export function bounded(value: unknown, maxBytes = MAX_STORED_BYTES): unknown {
  if (value === undefined) return null;
  const json = JSON.stringify(value) ?? "null";
  if (json.length <= maxBytes) return value;
  return { truncated: true, bytes: json.length, preview: json.slice(0, maxBytes - 200) };
}

/** A plain-text excerpt of at most `maxChars` characters. */
export function excerpt(text: string, maxChars = 2048): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}…[${text.length - maxChars} more]`;
}
