/** Default attempt timeout, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** A run's timeout in seconds: its target's, else its owner's (the job's or the task's), else 30 s. */
export function runTimeoutSeconds(target: { timeout?: number | undefined }, ownTimeout: number | null | undefined): number {
  return target.timeout ?? ownTimeout ?? DEFAULT_TIMEOUT_SECONDS;
}

/** A grace added to a run's timeout before its lease counts as expired (a consumer that vanished). */
export const LEASE_GRACE_MS = 30_000;
