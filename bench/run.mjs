#!/usr/bin/env node
// `npm run bench`: runs every benchmark against Taskflare and its baseline
// on the same local runtime, writes bench/results/latest.json and prints a
// summary. `--quick` is a short smoke run; `--only=http,size` picks benchmarks;
// `--ref=HEAD` measures a committed revision instead of the working tree;
// `--keep` keeps servers' logs and state in the temporary directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCost } from "./cost-bench.mjs";
import { runHttp } from "./http-bench.mjs";
import { startReceiver } from "./lib/receiver.mjs";
import { bin, ROOT, runSync, snapshotRepo, stopAll } from "./lib/servers.mjs";
import { renderSummary } from "./lib/summary.mjs";
import { systemLoad } from "./lib/system.mjs";
import { runPrecision } from "./precision-bench.mjs";
import { runScale } from "./scale-bench.mjs";
import { runSize } from "./size-bench.mjs";
import { runThroughput } from "./throughput-bench.mjs";

const BENCHMARKS = { size: runSize, http: runHttp, precision: runPrecision, throughput: runThroughput, cost: runCost, scale: runScale };

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const keep = args.includes("--keep");
const onlyArg = args.find((a) => a.startsWith("--only="));
const ref = args.find((a) => a.startsWith("--ref="))?.slice("--ref=".length);
const selected = onlyArg ? onlyArg.slice("--only=".length).split(",") : Object.keys(BENCHMARKS);
for (const name of selected)
  if (!BENCHMARKS[name]) throw new Error(`unknown benchmark ${name}; choose from ${Object.keys(BENCHMARKS).join(", ")}`);

const workDir = mkdtempSync(join(tmpdir(), "taskflare-bench-"));
// Read-only git queries: which code the numbers belong to.
const git = (...a) => {
  try {
    return runSync("git", a, { cwd: ROOT }).trim();
  } catch {
    return null;
  }
};
const revision = ref
  ? { measured: ref, commit: git("rev-parse", ref) }
  : {
      measured: "working tree",
      commit: git("rev-parse", "HEAD"),
      uncommitted_files: (git("status", "--porcelain", "--", ".", ":!bench") ?? "").split("\n").filter(Boolean).length,
    };
snapshotRepo(join(workDir, "repo"), ref);
const interrupted = async () => {
  await stopAll();
  process.exit(130);
};
process.on("SIGINT", interrupted);
process.on("SIGTERM", interrupted);

const started = Date.now();
const receiver = await startReceiver();
const sections = {};
try {
  for (const name of selected) {
    const t = Date.now();
    const loadBefore = systemLoad();
    process.stdout.write(`${name}... `);
    try {
      const result = await BENCHMARKS[name]({ quick, workDir, receiver });
      sections[name] = { ...result, seconds: Math.round((Date.now() - t) / 1000), load_before: loadBefore, load_after: systemLoad() };
      console.log(`done in ${sections[name].seconds} s`);
    } catch (error) {
      // One benchmark failing must not lose the others' results.
      sections[name] = {
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        seconds: Math.round((Date.now() - t) / 1000),
      };
      console.log(`FAILED: ${error instanceof Error ? error.message : error}`);
      await stopAll();
    }
  }
} finally {
  await stopAll();
  await receiver.close();
}

const figures = Object.values(sections).flatMap((s) => s.figures ?? []);
const withTarget = figures.filter((f) => f.target);
const report = {
  generated_at: new Date().toISOString(),
  command: `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`,
  quick,
  runtime_seconds: Math.round((Date.now() - started) / 1000),
  revision,
  environment: { node: process.version, wrangler: runSync(bin("wrangler"), ["--version"]).trim().split("\n").pop(), ...systemLoad() },
  summary: {
    figures: figures.length,
    with_target: withTarget.length,
    passed: withTarget.filter((f) => f.pass === true).length,
    failed: withTarget.filter((f) => f.pass === false).map((f) => f.id),
    invalid: figures.filter((f) => !f.valid).map((f) => f.id),
    errors: Object.entries(sections)
      .filter(([, s]) => s.error)
      .map(([n]) => n),
  },
  benchmarks: sections,
};
// Only a full run replaces latest.json (the README's figures); a partial one must not clobber it.
const resultsFile = onlyArg || quick ? "partial.json" : "latest.json";
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", resultsFile), `${JSON.stringify(report, null, 2)}\n`);
if (!keep) rmSync(workDir, { recursive: true, force: true });

console.log(`\n${renderSummary(sections)}\n`);
// Sections with more to say than their figures (the cost table) print it here.
for (const [name, section] of Object.entries(sections)) if (section.table) console.log(`[${name}]\n${section.table}\n`);
console.log(
  `${report.summary.passed}/${report.summary.with_target} targets met in ${report.runtime_seconds} s; failed: ${report.summary.failed.join(", ") || "none"}; invalid: ${report.summary.invalid.join(", ") || "none"}`,
);
console.log(`results: bench/results/${resultsFile}${keep ? `; logs and state kept in ${workDir}` : ""}`);
process.exitCode = report.summary.errors.length ? 1 : 0;
