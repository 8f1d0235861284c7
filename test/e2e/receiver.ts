import { createServer, type IncomingMessage, type Server } from "node:http";

export interface Delivery {
  path: string;
  webhookId: string | undefined;
  receivedAt: number;
  body: string;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  close: () => Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (chunk: Buffer) => (data += chunk.toString()));
    req.on("end", () => resolve(data));
  });
}

/** A local HTTP endpoint standing in for the user's service; `?delay_ms=N` answers slowly, `?status=N` answers N. */
export async function startReceiver(): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer(async (req, res) => {
    const receivedAt = Date.now();
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://localhost");
    deliveries.push({ path: url.pathname, webhookId: req.headers["webhook-id"] as string | undefined, receivedAt, body });
    const delay = Number(url.searchParams.get("delay_ms") ?? "0");
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const status = Number(url.searchParams.get("status") ?? "200");
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ ok: status < 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** p-th percentile (0-100) of a list of numbers, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}
