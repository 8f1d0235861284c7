import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** One per job: its clock (the alarm) and its lock (in-flight leases). */
export class JobObject extends DurableObject<Env> {
  /** Round trip used by /readyz to prove Durable Objects answer. */
  async ping(value: number): Promise<number> {
    return value;
  }

  /** Frees the in-flight slot a finished run held (max_instances). Idempotent. */
  async releaseLease(runId: string): Promise<void> {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)");
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE run_id = ?", runId);
  }
}
