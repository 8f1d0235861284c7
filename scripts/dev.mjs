#!/usr/bin/env node
// Runs Taskflare locally: prepares .dev.vars and the local D1, starts
// `wrangler dev`, and drives the heartbeat every minute, because wrangler dev
// never fires Cron Triggers by itself.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}` };
const args = process.argv.slice(2);

function portFrom(argv) {
  const i = argv.findIndex((a) => a === "--port" || a.startsWith("--port="));
  if (i === -1) return 8787;
  const value = argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1];
  return Number(value) || 8787;
}

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { cwd: root, env, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(bin("wrangler"))) run("npm", ["install", "--no-audit", "--no-fund"]);
if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("created .dev.vars from .dev.vars.example");
}
const persistAt = args.indexOf("--persist-to");
const persist = persistAt === -1 ? [] : ["--persist-to", args[persistAt + 1]];
run(bin("wrangler"), ["d1", "migrations", "apply", "DB", "--local", ...persist]);

const port = portFrom(args);
const devArgs = args.some((a) => a.startsWith("--port")) ? args : ["--port", String(port), ...args];
const wrangler = spawn(bin("wrangler"), ["dev", ...devArgs], { cwd: root, env, stdio: "inherit" });

const tickUrl = `http://127.0.0.1:${port}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`;
async function tick() {
  try {
    await fetch(tickUrl);
  } catch {
    // wrangler dev may still be starting or reloading; the next minute retries.
  }
}
// First tick soon after start, then on each minute boundary like the Cron Trigger.
const first = setTimeout(tick, 5_000);
let minutely;
const align = setTimeout(
  () => {
    tick();
    minutely = setInterval(tick, 60_000);
  },
  60_000 - (Date.now() % 60_000),
);

function stop(signal) {
  clearTimeout(first);
  clearTimeout(align);
  clearInterval(minutely);
  wrangler.kill(signal);
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
wrangler.on("exit", (code) => {
  clearTimeout(first);
  clearTimeout(align);
  clearInterval(minutely);
  process.exit(code ?? 0);
});
