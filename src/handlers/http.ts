import { readConfig } from "../env";
import { sendHttpTarget } from "../execution/http-target";
import { HttpTargetArgs } from "../execution/target-schema";
import { defineHandler } from "./registry";

/** The HTTP target as a handler: `{type:"http", ...}` and `{type:"handler", name:"http"}` are the same. */
export const httpHandler = defineHandler({
  name: "http",
  description: "Sends an HTTP request (the HTTP target).",
  args: HttpTargetArgs,
  async run(args, ctx) {
    const config = readConfig(ctx.env);
    return sendHttpTarget(
      { type: "http", ...args },
      {
        runId: ctx.runId,
        requestId: ctx.requestId,
        signal: ctx.signal,
        signingSecret: config.signingSecret,
        allowPrivate: config.allowPrivateTargets,
        now: Date.now,
      },
    );
  },
});
