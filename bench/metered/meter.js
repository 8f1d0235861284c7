// Counters for everything Cloudflare bills per operation. Module state is
// shared by the fetch/queue/scheduled handlers and the Durable Objects,
// which run in the same isolate under wrangler dev.

function fresh() {
  return {
    since: Date.now(),
    last_activity_at: Date.now(),
    d1: { statements: 0, rows_read: 0, rows_written: 0, by_entry: {}, by_statement: {} },
    queues: { messages_sent: 0, send_calls: 0, delivered: 0, acked: 0, retried: 0 },
    durable_objects: { requests: 0, by_method: {} },
    do_storage: { keys_written: 0, keys_read: 0, keys_deleted: 0, alarm_writes: 0, alarm_reads: 0 },
    workers: { requests: 0, by_entry: {} },
  };
}

let state = fresh();
const touch = () => (state.last_activity_at = Date.now());
const bump = (obj, key, by = 1) => (obj[key] = (obj[key] ?? 0) + by);

export const meter = {
  snapshot: () => ({ ...state, now: Date.now() }),
  reset() {
    state = fresh();
    return state;
  },
  workerRequest(entry) {
    touch();
    state.workers.requests++;
    bump(state.workers.by_entry, entry);
  },
  durableObjectRequest(method) {
    touch();
    state.durable_objects.requests++;
    bump(state.durable_objects.by_method, method);
  },
};

/** Adds one statement's D1 meta to the totals, per entry point and per statement text. */
function recordD1(entry, sql, meta) {
  touch();
  const read = meta?.rows_read ?? 0;
  const written = meta?.rows_written ?? 0;
  state.d1.statements++;
  state.d1.rows_read += read;
  state.d1.rows_written += written;
  state.d1.by_entry[entry] ??= { statements: 0, rows_read: 0, rows_written: 0 };
  const byEntry = state.d1.by_entry[entry];
  byEntry.statements++;
  byEntry.rows_read += read;
  byEntry.rows_written += written;
  const key = `${entry} | ${sql.replace(/\s+/g, " ").trim().slice(0, 140)}`;
  state.d1.by_statement[key] ??= { statements: 0, rows_read: 0, rows_written: 0 };
  const byStatement = state.d1.by_statement[key];
  byStatement.statements++;
  byStatement.rows_read += read;
  byStatement.rows_written += written;
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
    recordD1(this.entry, this.sql, result.meta);
    return result;
  }
  async run() {
    const result = await this.inner.run();
    recordD1(this.entry, this.sql, result.meta);
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
  return {
    prepare: (sql) => new MeteredStatement(entry, sql, db.prepare(sql)),
    async batch(statements) {
      const results = await db.batch(statements.map((s) => (s instanceof MeteredStatement ? s.inner : s)));
      for (const [i, result] of results.entries()) recordD1(entry, statements[i]?.sql ?? "?", result.meta);
      return results;
    },
    async exec(sql) {
      const result = await db.exec(sql);
      recordD1(entry, sql, { rows_read: 0, rows_written: 0 }); // exec reports no row counts
      return result;
    },
    dump: () => db.dump(),
    withSession: (...args) => db.withSession(...args),
  };
}

function meteredQueue(queue) {
  return {
    async send(body, options) {
      touch();
      state.queues.send_calls++;
      state.queues.messages_sent++;
      return queue.send(body, options);
    },
    async sendBatch(messages, options) {
      touch();
      state.queues.send_calls++;
      state.queues.messages_sent += messages.length;
      return queue.sendBatch(messages, options);
    },
  };
}

// Stub properties that are not RPC calls (any other name is one).
const NOT_RPC = new Set(["then", "id", "name", "dup", "connect"]);

/** A stub whose RPC calls are counted: each call is one billed Durable Object request. */
function meteredStub(stub) {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof prop !== "string" || NOT_RPC.has(prop) || typeof value !== "function") return value;
      return (...args) => {
        meter.durableObjectRequest(prop);
        return Reflect.apply(value, target, args); // value.apply would itself be an RPC call
      };
    },
  });
}

function meteredNamespace(ns) {
  return {
    idFromName: (name) => ns.idFromName(name),
    idFromString: (id) => ns.idFromString(id),
    newUniqueId: (options) => ns.newUniqueId(options),
    get: (id, options) => meteredStub(ns.get(id, options)),
    getByName: (name, options) => meteredStub(ns.getByName(name, options)),
  };
}

const envCache = new WeakMap();

/** The same env with metered DB, queues and Durable Object namespace; `entry` labels D1 use. */
export function meterEnv(env, entry) {
  let byEntry = envCache.get(env);
  if (!byEntry) {
    byEntry = new Map();
    envCache.set(env, byEntry);
  }
  if (!byEntry.has(entry)) {
    byEntry.set(entry, {
      ...env,
      DB: meteredD1(env.DB, entry),
      TASK_QUEUE: meteredQueue(env.TASK_QUEUE),
      HIGH_QUEUE: meteredQueue(env.HIGH_QUEUE),
      JOB_OBJECT: meteredNamespace(env.JOB_OBJECT),
    });
  }
  return byEntry.get(entry);
}

/** Counts a Durable Object's storage calls (SQLite-backed storage bills rows too). */
export function meterStorage(storage) {
  const wrap = (name, counter) => {
    const original = storage[name].bind(storage);
    storage[name] = (...args) => {
      touch();
      counter(...args);
      return original(...args);
    };
  };
  const keyCount = (first) =>
    Array.isArray(first) ? first.length : typeof first === "object" && first !== null ? Object.keys(first).length : 1;
  wrap("get", (keys) => (state.do_storage.keys_read += keyCount(keys)));
  wrap("put", (keys) => (state.do_storage.keys_written += keyCount(keys)));
  wrap("delete", (keys) => (state.do_storage.keys_deleted += keyCount(keys)));
  wrap("setAlarm", () => state.do_storage.alarm_writes++);
  wrap("deleteAlarm", () => state.do_storage.alarm_writes++);
  wrap("getAlarm", () => state.do_storage.alarm_reads++);
}

/** The batch with each message's ack/retry counted (a delivery is a read; an ack, a delete). */
export function meterBatch(batch) {
  touch();
  state.queues.delivered += batch.messages.length;
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
      touch();
      state.queues.acked++;
      message.ack();
    },
    retry(options) {
      touch();
      state.queues.retried++;
      message.retry(options);
    },
  }));
  return {
    queue: batch.queue,
    messages,
    ackAll() {
      state.queues.acked += messages.length;
      batch.ackAll();
    },
    retryAll(options) {
      state.queues.retried += messages.length;
      batch.retryAll(options);
    },
  };
}

/** Row counts per table, read unmetered: a cross-check of net rows added (not billed rows). */
export async function tableRows(db) {
  const out = {};
  for (const table of ["jobs", "runs", "job_stats", "scheduler_state"]) {
    out[table] = (await db.prepare(`SELECT count(*) AS n FROM ${table}`).first("n")) ?? 0;
  }
  return out;
}
