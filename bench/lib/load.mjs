// HTTP load: wrk when installed (its C client leaves more CPU to the server
// on a 2-core machine), else a small Node client with the same outputs.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./servers.mjs";
import { percentile } from "./stats.mjs";

const hasWrk = spawnSync("sh", ["-c", "command -v wrk"]).status === 0;

/** Which load generator this run uses. */
export const loadTool = hasWrk ? "wrk" : "node-fetch";

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/** Parses wrk's `--latency` report. */
export function parseWrk(output) {
  const number = (re) => {
    const m = re.exec(output);
    return m ? Number(m[1]) : 0;
  };
  const latency = {};
  for (const p of ["50", "75", "90", "99"]) {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(output);
    latency[`p${p}`] = m ? toMs(m[1]) : null;
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requests: number(/(\d+) requests in/),
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    latencyMs: latency,
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((s, v) => s + Number(v), 0) : 0,
  };
}

/**
 * Drives `url` for `seconds` with `connections` open connections.
 * `body` makes it a JSON POST; `headers` are added to every request.
 */
export async function load({ url, seconds, connections = 32, threads = 2, headers = {}, body }) {
  if (!hasWrk) return nodeLoad({ url, seconds, connections, headers, body });
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, "--latency"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  const env = { ...process.env };
  if (body !== undefined) {
    args.push("-s", join(ROOT, "bench", "lua", "post-json.lua"));
    env.BENCH_BODY = JSON.stringify(body);
  }
  args.push(url);
  const result = spawnSync("wrk", args, { env, encoding: "utf8", timeout: (seconds + 30) * 1000 });
  if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr || result.stdout}`);
  return { tool: "wrk", ...parseWrk(result.stdout) };
}

/** Fallback closed-loop client: `connections` concurrent fetch loops. */
async function nodeLoad({ url, seconds, connections, headers, body }) {
  const latencies = [];
  let non2xx = 0;
  let errors = 0;
  const init =
    body === undefined
      ? { headers }
      : { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) };
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const res = await fetch(url, init);
          await res.arrayBuffer();
          if (res.status >= 400) non2xx++;
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const latencyMs = Object.fromEntries(["50", "75", "90", "99"].map((p) => [`p${p}`, percentile(latencies, Number(p))]));
  return { tool: "node-fetch", requests: latencies.length, rps: latencies.length / elapsed, latencyMs, non2xx, socketErrors: errors };
}
