// One page of jobs straight from D1, as JSON: no validation, auth or mapping.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/count") return Response.json(await env.DB.prepare("SELECT count(*) AS jobs FROM jobs").first());
    if (url.pathname !== "/jobs") return new Response("d1-list");
    const limit = Math.min(200, Number(url.searchParams.get("limit") ?? 50));
    const cursor = url.searchParams.get("cursor") ?? "";
    const { results } = await env.DB.prepare("SELECT * FROM jobs WHERE id > ? ORDER BY id LIMIT ?")
      .bind(cursor, limit + 1)
      .all();
    const items = results.slice(0, limit);
    return Response.json({ items, next_cursor: results.length > limit ? items[items.length - 1].id : null });
  },
};
