import { database } from "../db/client";
import type { Env } from "../env";
import type { JobAlerts } from "../jobs/schema";
import { type JobRow, recordSuccessDeadline } from "../jobs/store";
import { sendJobAlerts } from "./alert-runs";
import { type AlertState, applyJobEvent, type JobEvent, NO_INCIDENTS } from "./alerts";

/** How many finished runs a job remembers, to ignore a repeated notice of one. */
const NOTED_RUNS = 100;

/**
 * A JobObject's alerts: feeds the job's outcomes and missed deadlines to the pure incident
 * logic (alerts.ts), keeps its state in the object's storage, sends what it decides and moves
 * the job's success deadline in D1 after a success.
 */
export class JobAlertKeeper {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: () => Env,
    private state: AlertState = NO_INCIDENTS,
  ) {}

  /** Forgets every incident (the job was deleted). */
  reset(): void {
    this.state = NO_INCIDENTS;
  }

  /** Feeds one ended run to the job's alerts and success deadline, once per run. */
  async noteOutcome(job: JobRow, runId: string, status: string, finishedAt: number): Promise<void> {
    if (this.state.noted?.includes(runId)) return;
    this.state = { ...this.state, noted: [...(this.state.noted ?? []), runId].slice(-NOTED_RUNS) };
    await this.noteEvent(job, { kind: "outcome", status, at: finishedAt }, runId);
    const window = alertConfig(job)?.expect_success_within;
    if (status === "succeeded" && window !== undefined) {
      await recordSuccessDeadline(database(this.env().DB), job.id, finishedAt + window * 1000);
    }
  }

  /** Applies an event (an outcome, a missed deadline) and sends the alerts it opens or closes. */
  async noteEvent(job: JobRow, event: JobEvent, runId: string | null): Promise<void> {
    const config = alertConfig(job);
    if (!config) return;
    const { state, alerts } = applyJobEvent(this.state, event, config);
    this.state = { ...state, noted: this.state.noted };
    await this.storage.put("alertState", state);
    await sendJobAlerts(this.env(), job, config, alerts, state, event, runId);
  }
}

function alertConfig(job: JobRow): JobAlerts | undefined {
  return (job.alerts ?? undefined) as JobAlerts | undefined;
}
