type Level = "debug" | "info" | "warn" | "error";

const SEVERITY: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let minimum = SEVERITY.info;

/**
 * Sets the least severe level written, from LOG_LEVEL (debug, info, warn or
 * error; anything else means info). Every entry point calls it with its env.
 */
export function useLogLevel(value: string | undefined): void {
  const level = value?.trim().toLowerCase();
  minimum = level !== undefined && level in SEVERITY ? SEVERITY[level as Level] : SEVERITY.info;
}

/** Whether a line at `level` is written: lets a caller skip building fields nobody reads. */
export function logs(level: Level): boolean {
  return SEVERITY[level] >= minimum;
}

/** One JSON object per line, so platform log search can filter on any field. */
export function log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  if (SEVERITY[level] < minimum) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
