import { database } from "../db/client";
import type { Env } from "../env";
import { type JobRow, recordSchedule } from "../jobs/store";
import { promisedReport, type RecordedSchedule, scheduleChange } from "./report-promise";

/**
 * What D1 holds of a JobObject's schedule (its state and the time it promises to report in,
 * report-promise.ts), so that only the columns that changed are written: most alarms of a
 * frequent job write nothing.
 */
export class ScheduleRecord {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: () => Env,
    private recorded: RecordedSchedule | null = null,
  ) {}

  /** D1's copy is unknown (the API rewrote the row, or the heartbeat found it stale): the next write sets every column. */
  forget(): void {
    this.recorded = null;
  }

  /**
   * Writes what changed for `job` in `state` with its next fire at `nextFire`, unless a newer
   * version was written meanwhile or `stillCurrent` says the job moved on while D1 answered.
   */
  async write(job: JobRow, state: string, nextFire: number | undefined, now: number, stillCurrent: () => boolean): Promise<void> {
    const next: RecordedSchedule = { state, nextRunAt: promisedReport(nextFire, this.recorded?.nextRunAt ?? null, now) };
    const change = scheduleChange(this.recorded, next);
    if (Object.keys(change).length === 0) return;
    const taken = await recordSchedule(database(this.env().DB), job.id, job.version, change);
    if (!taken || !stillCurrent()) return;
    this.recorded = next;
    await this.storage.put("recorded", next);
  }
}
