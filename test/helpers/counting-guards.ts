import { env } from "cloudflare:test";
import type { Env } from "../../src/env";

/** The bindings with a HostGuard namespace that counts the asks (acquireMany) and reports (releaseMany) its objects get. */
export function countingGuards(): { env: Env; asks: () => number; reports: () => number } {
  let asks = 0;
  let reports = 0;
  const real = env.HOST_GUARD;
  const namespace = new Proxy(real, {
    get(target, property) {
      if (property === "get")
        return (id: DurableObjectId) => {
          const stub = target.get(id);
          return new Proxy(stub, {
            get(s, p) {
              if (p === "acquireMany")
                return (...args: Parameters<typeof stub.acquireMany>) => {
                  asks++;
                  return s.acquireMany(...args);
                };
              if (p === "releaseMany")
                return (...args: Parameters<typeof stub.releaseMany>) => {
                  reports++;
                  return s.releaseMany(...args);
                };
              return Reflect.get(s, p);
            },
          });
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { env: { ...(env as Env), HOST_GUARD: namespace }, asks: () => asks, reports: () => reports };
}
