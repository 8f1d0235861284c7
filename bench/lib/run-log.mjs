// Where a run's time went, from its own record (GET /v1/runs): when it was
// created, when its last attempt started (the claim) and when it finished.
// Reading the run rather than the log keeps the stages available at any
// LOG_LEVEL. Worker clocks advance only across I/O, so stages are close, not exact.

/** created / claimed / finished epoch ms of a run as the API returns it (undefined when not reached). */
export function runTimes(run) {
  const at = (iso) => (iso ? Date.parse(iso) : undefined);
  return { created: at(run.created_at), claimed: at(run.started_at), finished: at(run.finished_at) };
}
