const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * A ULID-style id: 10 characters of milliseconds then 16 random ones, so ids
 * sort by creation time and cursor pagination needs no extra index.
 */
export function newId(prefix: string, now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let tail = "";
  for (const byte of random) tail += CROCKFORD[byte % 32];
  return `${prefix}_${time}${tail}`;
}
