import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** One per job: its clock (the alarm) and its lock (in-flight leases). */
export class JobObject extends DurableObject<Env> {
  /** Round trip used by /readyz to prove Durable Objects answer. */
  async ping(value: number): Promise<number> {
    return value;
  }
}
