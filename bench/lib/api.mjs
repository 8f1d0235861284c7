// A small JSON client for the Taskflare API (and the baselines' control routes).

/**
 * Returns `call(method, path, body?)` bound to a server and bearer token; throws on unexpected
 * statuses, and on no answer within `timeoutMs` (a server that stopped answering must not hang a benchmark).
 */
export function apiClient(baseUrl, token, { timeoutMs = 120_000 } = {}) {
  return async function call(method, path, body, { expect = [200, 201, 202, 204] } = {}) {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (!expect.includes(response.status)) throw new Error(`${method} ${path} -> ${response.status}: ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Walks a cursor-paginated list (`{items, next_cursor}`) and returns every item. */
export async function listAll(call, path, limit = 200) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await call("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
