// Starts and stops the local Workers the benchmarks drive. Every server runs
// under `wrangler dev` from this repository's node_modules (Node 22), in its
// own process group so stopping it also stops its workerd children.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, openSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep, waitFor } from "./wait.mjs";

/** The repository this benchmark lives in. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const bin = (name) => join(ROOT, "node_modules", ".bin", name);

/** Where servers run from: the repository, or a snapshot of it (see snapshotRepo). */
const paths = { root: ROOT };
/** A path in the tree the servers run from. */
export const runPath = (...parts) => join(paths.root, ...parts);
/** A path under bench/ in that tree. */
export const benchPath = (...parts) => join(paths.root, "bench", ...parts);

const SKIP = new Set(["node_modules", ".git", ".wrangler", "test", "docs", "results"]);

/**
 * Copies the repository (without node_modules, which is linked) and runs
 * every server from the copy. `wrangler dev` reloads on any source change
 * and a reload drops the local queue's messages, so edits made while the
 * benchmark runs would corrupt it; the copy also pins one version of src/.
 */
export function snapshotRepo(dir, ref) {
  cpSync(ROOT, dir, { recursive: true, filter: (src) => !SKIP.has(src.split("/").pop()) || src === ROOT });
  if (ref) {
    // A committed revision instead of the working tree (read-only: git archive
    // writes only into the copy); bench/ itself stays the working tree's.
    // Tracked code is replaced wholesale, so no uncommitted file lingers.
    for (const name of ["src", "migrations", "scripts"]) rmSync(join(dir, name), { recursive: true, force: true });
    const tar = spawnSync(
      "sh",
      ["-c", `git archive --format=tar ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)} --exclude=bench`],
      { cwd: ROOT, encoding: "utf8" },
    );
    if (tar.status !== 0) throw new Error(`git archive ${ref} failed: ${tar.stderr}`);
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  paths.root = dir;
  return dir;
}

/** Children get Node 22 first on PATH (wrangler refuses Node 20), no telemetry, no interactive UI. */
export const childEnv = {
  ...process.env,
  PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`,
  WRANGLER_SEND_METRICS: "false",
  CI: "true",
};

const running = new Set();

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** The local secrets file: .dev.vars if `npm run dev` created it, else the example it is copied from. */
export function devVarsFile() {
  const file = runPath(".dev.vars");
  return existsSync(file) ? file : runPath(".dev.vars.example");
}

/** The API token Taskflare expects locally. */
export function apiToken() {
  const line = readFileSync(devVarsFile(), "utf8")
    .split("\n")
    .find((l) => l.startsWith("API_TOKEN="));
  return line ? line.slice("API_TOKEN=".length).trim() : "";
}

/** Runs a command to completion; throws with its output if it fails. */
export function runSync(command, args, { cwd = paths.root } = {}) {
  const result = spawnSync(command, args, { cwd, env: childEnv, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return `${result.stdout}${result.stderr}`;
}

/** Applies Taskflare's D1 migrations to a local persistence directory. */
export function applyMigrations(persistTo, config) {
  const configArgs = config ? ["--config", config] : [];
  runSync(bin("wrangler"), ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, ...configArgs]);
}

/**
 * Spawns a long-running server, logs to a file (so its output costs the
 * benchmark process nothing), and waits until `readyPath` answers 200.
 */
async function startServer({ name, command, args, port, logFile, readyPath }) {
  const fd = openSync(logFile, "a");
  const child = spawn(command, args, { cwd: paths.root, env: childEnv, stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  const server = { name, url: `http://127.0.0.1:${port}`, port, logFile, child, log: () => readFileSync(logFile, "utf8") };
  server.stop = () => stopServer(server);
  running.add(server);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited early (code ${child.exitCode}); see ${logFile}`);
        try {
          return (await fetch(`${server.url}${readyPath}`)).ok;
        } catch {
          return false; // not listening yet
        }
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `${name} to answer ${readyPath}` },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Stops a server's whole process group: SIGTERM, then SIGKILL after 10 s. */
export async function stopServer(server) {
  running.delete(server);
  const { child } = server;
  if (child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return; // already gone
  }
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  await sleep(500); // let workerd release its port and SQLite files
}

/** Stops everything still running (on exit or interrupt). */
export async function stopAll() {
  await Promise.all([...running].map((s) => stopServer(s)));
}

/**
 * Starts Taskflare the README's way: `npm run dev -- --port N --persist-to DIR`
 * (migrations, wrangler dev, minute ticker); `logLevel` sets LOG_LEVEL.
 */
export async function startTaskflare({ persistTo, logFile, logLevel }) {
  const port = await freePort();
  const vars = logLevel ? ["--var", `LOG_LEVEL:${logLevel}`] : [];
  return startServer({
    name: "taskflare",
    command: "npm",
    args: ["run", "dev", "--", "--port", String(port), "--persist-to", persistTo, ...vars],
    port,
    logFile,
    readyPath: "/healthz",
  });
}

/** Starts a Worker from its own wrangler.toml with the same wrangler binary. */
export async function startWorker({ name, config, persistTo, logFile, readyPath = "/", envFile }) {
  const port = await freePort();
  const args = ["dev", "--config", config, "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persistTo];
  if (envFile) args.push("--env-file", envFile);
  return startServer({ name, command: bin("wrangler"), args, port, logFile, readyPath });
}
