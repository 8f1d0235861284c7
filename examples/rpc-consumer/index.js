// Enqueues a task and reads runs and jobs through Taskflare's TaskflareRPC entrypoint.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/signup" && request.method === "POST") {
      const { email } = await request.json();
      const run = await env.TASKFLARE.enqueue(
        {
          target: { type: "http", url: url.searchParams.get("hook") ?? "https://example.com/welcome", body: { email } },
          retry: { max_attempts: 5 },
        },
        { idempotency_key: `welcome:${email}` },
      );
      return Response.json({ queued: run.id });
    }
    if (url.pathname.startsWith("/runs/")) return Response.json(await env.TASKFLARE.getRun(url.pathname.slice("/runs/".length)));
    if (url.pathname === "/rpc" && request.method === "POST") {
      // Any TaskflareRPC method by name (used by Taskflare's own end-to-end test).
      const { method, args } = await request.json();
      try {
        return Response.json({ ok: true, result: (await env.TASKFLARE[method](...args)) ?? null });
      } catch (error) {
        return Response.json({ ok: false, error: String(error?.message ?? error) });
      }
    }
    return new Response("not found", { status: 404 });
  },
};
