// Any Durable Object class, metered without knowing it: its storage (see
// do-storage.js), its bindings (bindings.js), every request it receives (RPC
// calls, fetch, alarms) and how long each keeps the object active.
import { DurableObject } from "cloudflare:workers";
import { meterEnv } from "./bindings.js";
import { meterStorage } from "./do-storage.js";
import { meter } from "./state.js";

/** Every method of `Base`'s prototype chain below DurableObject: what a stub or the runtime can call. */
function methodNames(Base) {
  const names = new Set();
  for (
    let proto = Base.prototype;
    proto && proto !== DurableObject.prototype && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (name !== "constructor" && typeof descriptor?.value === "function") names.add(name);
    }
  }
  return names;
}

/** True when `value` is a class that extends DurableObject. */
export const isDurableObjectClass = (value) => typeof value === "function" && value.prototype instanceof DurableObject;

/** Times the object's own background work (constructor's blockConcurrencyWhile, waitUntil) as activity, not requests. */
function meterContext(ctx, clock) {
  const blockConcurrencyWhile = ctx.blockConcurrencyWhile.bind(ctx);
  ctx.blockConcurrencyWhile = (callback) =>
    blockConcurrencyWhile(async () => {
      const end = clock.begin(null);
      try {
        return await callback();
      } finally {
        end();
      }
    });
  const waitUntil = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (promise) => {
    const end = clock.begin(null);
    const settle = () => end();
    Promise.resolve(promise).then(settle, settle);
    return waitUntil(promise);
  };
}

/**
 * A subclass of `Base` that is metered. The object the runtime holds is a
 * proxy of the instance: a method called through it came from outside (an
 * RPC call, fetch or alarm) and is counted and timed, then runs on the
 * instance itself, so the calls it makes to its own methods are not.
 */
export function meteredDurableObject(Base, className) {
  const insides = new WeakMap(); // the runtime's proxy -> { instance, clock }
  class Metered extends Base {
    constructor(ctx, env) {
      // Before super(): the class's constructor already reads storage.
      const clock = meter.objectClock(className);
      meter.objectCreated(className);
      meterStorage(ctx.storage, className);
      meterContext(ctx, clock);
      super(ctx, meterEnv(env, `durable-object:${className}`));
      // Accessors run on the instance, so private fields behind them still work.
      const outside = new Proxy(this, { get: (target, prop) => Reflect.get(target, prop) });
      insides.set(outside, { instance: this, clock });
      // biome-ignore lint/correctness/noConstructorReturn: the runtime must hold the proxy to tell outside calls from inside ones.
      return outside;
    }
  }
  for (const name of methodNames(Base)) {
    const original = Base.prototype[name];
    Object.defineProperty(Metered.prototype, name, {
      configurable: true,
      writable: true,
      value: function metered(...args) {
        const inside = insides.get(this);
        if (!inside) return original.apply(this, args);
        const end = inside.clock.begin(name);
        let result;
        try {
          result = original.apply(inside.instance, args);
        } catch (error) {
          end(true);
          throw error;
        }
        if (typeof result?.then !== "function") {
          end();
          return result;
        }
        return result.then(
          (value) => {
            end();
            return value;
          },
          (error) => {
            end(true);
            throw error;
          },
        );
      },
    });
  }
  Object.defineProperty(Metered, "name", { value: className });
  return Metered;
}
