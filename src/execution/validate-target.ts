import type { Config } from "../env";
import { ApiError, zodDetails } from "../errors";
import { findHandler, handlers } from "../handlers";
import { checkTargetUrl } from "./ssrf";
import type { Target } from "./target-schema";

/**
 * Checks what the schema cannot: that a handler exists and its arguments fit
 * its schema, and that an HTTP target is not aimed into a private network.
 * Runs at enqueue time so bad targets are a 400, never a failed run later.
 */
export function validateTarget(target: Target, config: Config, path = "target"): Target {
  if (target.type === "http") {
    const checked = checkTargetUrl(target.url, { allowPrivate: config.allowPrivateTargets });
    if (!checked.ok) {
      throw new ApiError("validation_failed", `Refused target URL: ${checked.reason}`, [
        { path: `${path}.url`, message: checked.reason, code: "refused_target" },
      ]);
    }
    return target;
  }
  const handler = findHandler(target.name);
  if (!handler) {
    throw new ApiError("validation_failed", `Unknown handler "${target.name}"`, [
      { path: `${path}.name`, message: `known handlers: ${handlers.map((h) => h.name).join(", ")}`, code: "unknown_handler" },
    ]);
  }
  const parsed = handler.args.safeParse(target.args ?? {});
  if (!parsed.success) {
    const details = zodDetails(parsed.error).map((d) => ({ ...d, path: d.path ? `${path}.args.${d.path}` : `${path}.args` }));
    throw new ApiError("validation_failed", `Invalid arguments for handler "${target.name}"`, details);
  }
  if (handler.name === "http") {
    // The http handler's args are an HTTP target; it gets the same SSRF check.
    validateTarget({ type: "http", ...(parsed.data as Omit<Extract<Target, { type: "http" }>, "type">) }, config, `${path}.args`);
  }
  return { ...target, args: parsed.data };
}
