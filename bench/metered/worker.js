// The metered Worker's default export: the measured Worker's own handlers,
// unmodified, with every binding metered and every invocation counted, plus
// the routes the benchmarks read the meter from. The entry module that
// start.mjs generates pairs it with a metered subclass of each Durable Object
// class the Worker binds.
import { meterBatch, meterEnv, tableRows } from "./bindings.js";
import { isDurableObjectClass } from "./durable-objects.js";
import { meter } from "./state.js";

/** Counts one invocation and keeps it in flight until it settles. */
function invoke(entry, run) {
  meter.workerRequest(entry);
  let promise;
  try {
    promise = Promise.resolve(run());
  } catch (error) {
    promise = Promise.reject(error);
  }
  promise.catch(() => meter.workerError());
  return meter.track(promise);
}

/**
 * `handlers`: the measured Worker's default export. `module`: all its exports,
 * `metered`: the class names the generated entry wraps; a Durable Object
 * class exported but not wrapped is reported in the meter (it has no binding).
 */
export function meteredWorker(handlers, { module, metered }) {
  const unmetered = Object.entries(module)
    .filter(([name, value]) => isDurableObjectClass(value) && !metered.includes(name))
    .map(([name]) => name);
  const routes = {
    "/__bench/meter": () => ({ ...meter.snapshot(), metered_classes: metered, unmetered_classes: unmetered }),
    "/__bench/meter/reset": () => meter.reset(),
  };
  return {
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      const route = routes[url.pathname];
      if (route) return Response.json(route());
      if (url.pathname === "/__bench/rows") return Response.json(env.DB ? await tableRows(env.DB) : {});
      const response = await invoke("fetch", () => handlers.fetch(request, meterEnv(env, "fetch"), ctx));
      meter.workerResponse(response.status);
      return response;
    },
    ...(handlers.queue && {
      queue(batch, env, ctx) {
        const metered = meterBatch(batch);
        return invoke("queue", async () => {
          try {
            await handlers.queue(metered.batch, meterEnv(env, "queue"), ctx);
            metered.finish(true);
          } catch (error) {
            metered.finish(false);
            throw error;
          }
        });
      },
    }),
    ...(handlers.scheduled && {
      scheduled: (controller, env, ctx) => invoke("scheduled", () => handlers.scheduled(controller, meterEnv(env, "scheduled"), ctx)),
    }),
  };
}
