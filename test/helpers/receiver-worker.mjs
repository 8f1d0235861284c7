// A stand-in for the outside world: every outbound fetch of the Worker under
// test lands here (miniflare's outboundService). It records each request and
// answers as the URL's query asks, so tests can assert on what was delivered.
const received = [];
const hits = new Map();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.hostname === "receiver.test" && url.pathname === "/__requests") {
      const prefix = url.searchParams.get("prefix") ?? "";
      return Response.json(received.filter((r) => new URL(r.url).pathname.startsWith(prefix)));
    }
    const body = await request.text();
    received.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers), body, at: Date.now() });
    const n = (hits.get(url.pathname) ?? 0) + 1;
    hits.set(url.pathname, n);
    const q = url.searchParams;
    if (q.has("delay_ms")) await sleep(Number(q.get("delay_ms")));
    const failTimes = Number(q.get("fail_times") ?? "0");
    let status = Number(q.get("status") ?? "200");
    if (failTimes > 0 && n > failTimes) status = 200;
    const headers = new Headers({ "content-type": "application/json" });
    if (q.has("retry_after") && status !== 200) headers.set("retry-after", q.get("retry_after"));
    if (q.has("redirect_to") && n === 1) {
      headers.set("location", q.get("redirect_to"));
      return new Response(null, { status: Number(q.get("redirect_status") ?? "302"), headers });
    }
    return new Response(JSON.stringify({ n, status }), { status, headers });
  },
};
