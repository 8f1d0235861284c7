// Metered versions of the bindings a Worker or Durable Object receives. Every
// binding of a known kind is wrapped, whatever its name, so a new queue,
// database or Durable Object namespace is counted without editing this file.
import { meter } from "./state.js";

/** True when `value`'s own prototype (not a proxying stub) has every one of `names`. */
function hasMethods(value, names) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  if (!proto) return false;
  const own = new Set(Object.getOwnPropertyNames(proto));
  return names.every((n) => own.has(n));
}

const isD1 = (b) => hasMethods(b, ["prepare", "batch", "exec"]);
const isQueue = (b) => hasMethods(b, ["send", "sendBatch"]);
const isNamespace = (b) => hasMethods(b, ["idFromName", "get"]);

/** `target` with `overrides` in front; every other member passes through, bound to `target`. */
function withOverrides(target, overrides) {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop];
      const value = Reflect.get(t, prop);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

/**
 * A D1 statement that reports its meta. `raw()` and `first()` discard meta,
 * so they run as `all()` and convert the rows back (column order is the
 * object key order D1 builds them in; Taskflare's queries have no duplicate
 * column names, so nothing is lost).
 */
class MeteredStatement {
  constructor(entry, sql, inner) {
    this.entry = entry;
    this.sql = sql;
    this.inner = inner;
  }
  bind(...params) {
    return new MeteredStatement(this.entry, this.sql, this.inner.bind(...params));
  }
  async all() {
    const result = await this.inner.all();
    meter.d1Statement(this.entry, this.sql, result.meta);
    return result;
  }
  async run() {
    const result = await this.inner.run();
    meter.d1Statement(this.entry, this.sql, result.meta);
    return result;
  }
  async first(column) {
    const { results } = await this.all();
    const row = results[0];
    if (row === undefined) return null;
    return column === undefined ? row : row[column];
  }
  async raw(options) {
    const { results } = await this.all();
    const rows = results.map((row) => Object.values(row));
    if (options?.columnNames) return [results[0] ? Object.keys(results[0]) : [], ...rows];
    return rows;
  }
}

function meteredD1(db, entry) {
  return withOverrides(db, {
    prepare: (sql) => new MeteredStatement(entry, sql, db.prepare(sql)),
    async batch(statements) {
      const results = await db.batch(statements.map((s) => (s instanceof MeteredStatement ? s.inner : s)));
      for (const [i, result] of results.entries()) meter.d1Statement(entry, statements[i]?.sql ?? "?", result.meta);
      return results;
    },
    async exec(sql) {
      const result = await db.exec(sql);
      meter.d1Statement(entry, sql, { rows_read: 0, rows_written: 0 }); // exec reports no row counts
      return result;
    },
    withSession: (...args) => meteredD1(db.withSession(...args), entry),
  });
}

function meteredQueue(queue) {
  return withOverrides(queue, {
    async send(body, options) {
      meter.queue("send_calls");
      meter.queue("messages_sent");
      return queue.send(body, options);
    },
    async sendBatch(messages, options) {
      meter.queue("send_calls");
      meter.queue("messages_sent", messages.length);
      return queue.sendBatch(messages, options);
    },
  });
}

// Stub properties that are not RPC calls (any other name is one).
const NOT_RPC = new Set(["then", "id", "name", "dup", "connect"]);

/** A stub whose RPC calls are counted on the caller's side (the object counts what it receives). */
function meteredStub(stub) {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof prop !== "string" || NOT_RPC.has(prop) || typeof value !== "function") return value;
      return (...args) => {
        meter.stubCall();
        return Reflect.apply(value, target, args); // value.apply would itself be an RPC call
      };
    },
  });
}

function meteredNamespace(ns) {
  return withOverrides(ns, {
    get: (id, options) => meteredStub(ns.get(id, options)),
    getByName: (name, options) => meteredStub(ns.getByName(name, options)),
  });
}

/** The binding metered if it is a D1 database, a queue producer or a Durable Object namespace; else itself. */
function meteredBinding(binding, entry) {
  if (isD1(binding)) return meteredD1(binding, entry);
  if (isQueue(binding)) return meteredQueue(binding);
  if (isNamespace(binding)) return meteredNamespace(binding);
  return binding;
}

const envCache = new WeakMap();

/** The same env with every D1, queue and Durable Object binding metered; `entry` labels D1 use. */
export function meterEnv(env, entry) {
  let byEntry = envCache.get(env);
  if (!byEntry) {
    byEntry = new Map();
    envCache.set(env, byEntry);
  }
  if (!byEntry.has(entry)) {
    byEntry.set(entry, Object.fromEntries(Object.entries(env).map(([name, binding]) => [name, meteredBinding(binding, entry)])));
  }
  return byEntry.get(entry);
}

/**
 * The batch with each message's fate counted: a delivery is a read, an ack a
 * delete. A message neither acked nor retried when the handler returns is
 * acked by the platform; when the handler throws, every such message is retried.
 */
export function meterBatch(batch) {
  meter.queue("delivered", batch.messages.length);
  const settled = new Set();
  const settle = (message, field) => {
    if (settled.has(message)) return;
    settled.add(message);
    meter.queue(field);
  };
  const messages = batch.messages.map((message) => ({
    get id() {
      return message.id;
    },
    get body() {
      return message.body;
    },
    get attempts() {
      return message.attempts;
    },
    get timestamp() {
      return message.timestamp;
    },
    ack() {
      settle(message, "acked");
      message.ack();
    },
    retry(options) {
      settle(message, "retried");
      message.retry(options);
    },
  }));
  return {
    batch: {
      queue: batch.queue,
      messages,
      ackAll() {
        for (const m of batch.messages) settle(m, "acked");
        batch.ackAll();
      },
      retryAll(options) {
        for (const m of batch.messages) settle(m, "retried");
        batch.retryAll(options);
      },
    },
    /** Counts the platform's implicit acks (`ok`) or retries (the handler threw). */
    finish(ok) {
      for (const m of batch.messages) settle(m, ok ? "implicitly_acked" : "retried");
    },
  };
}

/** Row counts per table, read unmetered: a cross-check of net rows added (not billed rows). */
export async function tableRows(db) {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")
    .all();
  const out = {};
  for (const { name } of results) {
    if (name === "d1_migrations") continue;
    out[name] = (await db.prepare(`SELECT count(*) AS n FROM "${name}"`).first("n")) ?? 0;
  }
  return out;
}
