/** IETF health-check draft statuses, ordered from best to worst. */
export type HealthStatus = "pass" | "warn" | "fail";

export interface CheckOutcome {
  status: HealthStatus;
  observedValue?: number | string | boolean;
  observedUnit?: string;
  output?: string;
}

/** A readiness check as data; the runner owns timeouts and aggregation. */
export interface HealthCheck {
  name: string;
  /** A failing non-critical check degrades the result to `warn` rather than `fail`. */
  critical: boolean;
  timeoutMs: number;
  run(signal: AbortSignal): Promise<CheckOutcome>;
}

export interface CheckReport extends CheckOutcome {
  componentName: string;
  time: string;
}

export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, CheckReport[]>;
}

const rank: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

async function runOne(check: HealthCheck): Promise<CheckOutcome> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Racing the check against a timer means a hung dependency cannot hang the probe.
  const timeout = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ status: "fail", output: `timed out after ${check.timeoutMs} ms` });
    }, check.timeoutMs);
  });
  try {
    return await Promise.race([check.run(controller.signal), timeout]);
  } catch (error) {
    return { status: "fail", output: error instanceof Error ? error.message : String(error) };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Runs every check concurrently and folds them into one draft-format report. */
export async function runHealthChecks(checks: HealthCheck[], now: () => Date = () => new Date()): Promise<HealthReport> {
  const outcomes = await Promise.all(checks.map(runOne));
  let status: HealthStatus = "pass";
  const report: HealthReport["checks"] = {};
  checks.forEach((check, i) => {
    const outcome = outcomes[i] ?? { status: "fail", output: "no outcome" };
    const effective: HealthStatus = outcome.status === "fail" && !check.critical ? "warn" : outcome.status;
    if (rank[effective] > rank[status]) status = effective;
    report[check.name] = [
      { componentName: check.name.split(":")[0] ?? check.name, ...outcome, status: effective, time: now().toISOString() },
    ];
  });
  return { status, checks: report };
}
