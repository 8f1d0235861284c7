/**
 * A job's entity tag is its version, as a strong validator (`"3"`): the version changes
 * with every change to the definition, so a client can send back what it read.
 */

/** What a caller's If-Match accepts: any existing job (`*`), or the versions its tags name. */
export type VersionCondition = "*" | readonly number[];

/** The ETag of a job at `version`. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * Reads an If-Match header (RFC 9110 13.1.1): `*`, or a list of entity tags. Comparison is
 * strong, so a weak tag (`W/"3"`) or anything that is not a quoted version names no version
 * and cannot match. Undefined when there is no header (no condition).
 */
export function parseIfMatch(header: string | undefined): VersionCondition | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === "*") return "*";
  const versions: number[] = [];
  for (const tag of header.split(",")) {
    const quoted = /^"(\d{1,15})"$/.exec(tag.trim());
    if (quoted?.[1] !== undefined) versions.push(Number(quoted[1]));
  }
  return versions;
}

/** Whether a job at `version` (undefined: no such job) satisfies the condition; `*` needs the job to exist. */
export function satisfies(condition: VersionCondition, version: number | undefined): boolean {
  if (version === undefined) return false;
  return condition === "*" || condition.includes(version);
}
