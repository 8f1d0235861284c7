import { DURATION_BUCKETS_MS } from "../db/schema";

/** Estimates the q-quantile (0..1) of durations from bucket counts, interpolating inside a bucket (as Prometheus does). */
export function quantileFromBuckets(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const target = q * total;
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i] ?? 0;
    if (count > 0 && cumulative + count >= target) {
      const lower = i === 0 ? 0 : (DURATION_BUCKETS_MS[i - 1] ?? 0);
      const upper = DURATION_BUCKETS_MS[i];
      // The +Inf bucket has no upper edge: report its lower edge, like histogram_quantile.
      if (upper === undefined) return lower;
      return lower + (upper - lower) * ((target - cumulative) / count);
    }
    cumulative += count;
  }
  return DURATION_BUCKETS_MS[DURATION_BUCKETS_MS.length - 1] ?? null;
}
