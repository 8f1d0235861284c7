// Counts what a Durable Object's storage bills: SQLite rows read and written.
// SQL statements report their own counts (the cursor's rowsRead/rowsWritten,
// index entries included). The key-value API stores each key as one row of a
// hidden table whose counts the API does not expose, so a key read is counted
// as one row read and a key written or deleted as one row written. Each
// setAlarm and deleteAlarm is one row written (Cloudflare's pricing page).
import { meter } from "./state.js";

// Miniflare's own bookkeeping in every named object (it records the name for its local explorer); production has none.
const LOCAL_ONLY = /__miniflare_/;

/** The key names of a get/put/delete argument: one key, an array of keys, or an object of entries. */
const keyNames = (keys) =>
  Array.isArray(keys) ? keys.map(String) : typeof keys === "object" && keys !== null ? Object.keys(keys) : [String(keys)];
const keyCount = (keys) => keyNames(keys).length;

/** Replaces `target[name]` with `wrapper(original)`, the original bound to `target`. */
function wrapMethod(target, name, wrapper) {
  if (typeof target?.[name] !== "function") return;
  const original = target[name].bind(target);
  target[name] = wrapper(original);
}

/** An iterator that counts each item it yields. */
function countingIterator(inner, onItem) {
  return {
    next(...args) {
      const result = inner.next(...args);
      if (!result.done) onItem();
      return result;
    },
    toArray() {
      const rows = [...this];
      return rows;
    },
    [Symbol.iterator]() {
      return this;
    },
  };
}

/**
 * A SQL cursor whose counters are read after every step. SQLite runs a
 * statement lazily: a write is done once exec() returns, a SELECT reads rows
 * as it is iterated, and the counts are final once it is consumed; a cursor
 * never consumed has read only what exec() stepped. So each call adds what
 * the counters moved since the last one.
 */
class MeteredCursor {
  #cursor;
  #account;
  #read = 0;
  #written = 0;

  constructor(cursor, account) {
    this.#cursor = cursor;
    this.#account = account;
    this.#harvest(true);
  }

  #harvest(first = false) {
    const read = this.#cursor.rowsRead;
    const written = this.#cursor.rowsWritten;
    if (first || read !== this.#read || written !== this.#written) this.#account(read - this.#read, written - this.#written, first);
    this.#read = read;
    this.#written = written;
  }

  #after(step) {
    try {
      return step();
    } finally {
      this.#harvest();
    }
  }

  next() {
    return this.#after(() => this.#cursor.next());
  }
  toArray() {
    return this.#after(() => this.#cursor.toArray());
  }
  one() {
    return this.#after(() => this.#cursor.one());
  }
  raw() {
    const rows = this.#cursor.raw();
    const after = (step) => this.#after(step);
    return {
      next: () => after(() => rows.next()),
      toArray: () => after(() => rows.toArray()),
      get columnNames() {
        return rows.columnNames;
      },
      [Symbol.iterator]() {
        return this;
      },
    };
  }
  [Symbol.iterator]() {
    return this;
  }
  get columnNames() {
    return this.#cursor.columnNames;
  }
  get rowsRead() {
    return this.#cursor.rowsRead;
  }
  get rowsWritten() {
    return this.#cursor.rowsWritten;
  }
}

/** Meters the asynchronous key-value and alarm methods of a storage or a transaction. */
function meterAsyncKv(target, count, written) {
  wrapMethod(target, "get", (get) => (keys, options) => {
    count("kv_rows_read", keyCount(keys));
    return get(keys, options);
  });
  wrapMethod(target, "put", (put) => (keys, ...rest) => {
    written(keyNames(keys));
    return put(keys, ...rest);
  });
  wrapMethod(target, "delete", (del) => (keys, options) => {
    written(keyNames(keys));
    return del(keys, options);
  });
  wrapMethod(target, "list", (list) => async (options) => {
    const entries = await list(options);
    count("kv_rows_read", entries.size);
    return entries;
  });
  wrapMethod(target, "setAlarm", (setAlarm) => (...args) => {
    count("alarm_sets");
    return setAlarm(...args);
  });
  wrapMethod(target, "deleteAlarm", (deleteAlarm) => (...args) => {
    count("alarm_deletes");
    return deleteAlarm(...args);
  });
  wrapMethod(target, "getAlarm", (getAlarm) => (...args) => {
    count("alarm_reads");
    return getAlarm(...args);
  });
}

/** Meters `ctx.storage` of one object of `className`, in place, before the object's constructor reads it. */
export function meterStorage(storage, className) {
  const count = (field, by = 1) => meter.storage(className, field, by);
  const written = (keys) => {
    count("kv_rows_written", keys.length);
    meter.kvWrites(className, keys);
  };
  meterAsyncKv(storage, count, written);
  // Rows deleted by deleteAll are not reported anywhere: the call is counted, its rows are not.
  wrapMethod(storage, "deleteAll", (deleteAll) => (...args) => {
    count("delete_all_calls");
    return deleteAll(...args);
  });
  // An async transaction hands its closure another object with the same methods.
  wrapMethod(
    storage,
    "transaction",
    (transaction) =>
      (closure, ...rest) =>
        transaction(
          (txn) => {
            meterAsyncKv(txn, count, written);
            return closure(txn);
          },
          ...rest,
        ),
  );
  // transactionSync passes through: the statements inside it are counted one by one.

  let sql;
  try {
    sql = storage.sql; // KV-backed classes have none
  } catch {
    sql = undefined;
  }
  wrapMethod(sql, "exec", (exec) => (query, ...bindings) => {
    const cursor = exec(query, ...bindings);
    if (LOCAL_ONLY.test(query)) {
      count("local_only_statements");
      return cursor;
    }
    return new MeteredCursor(cursor, (read, written, first) => meter.sqlRows(className, query, read, written, first));
  });

  const kv = storage.kv; // the synchronous key-value API of SQLite-backed objects
  wrapMethod(kv, "get", (get) => (key, ...rest) => {
    count("kv_rows_read", keyCount(key));
    return get(key, ...rest);
  });
  wrapMethod(kv, "put", (put) => (key, ...rest) => {
    written([String(key)]);
    return put(key, ...rest);
  });
  wrapMethod(kv, "delete", (del) => (key, ...rest) => {
    written([String(key)]);
    return del(key, ...rest);
  });
  wrapMethod(
    kv,
    "list",
    (list) =>
      (...args) =>
        countingIterator(list(...args), () => count("kv_rows_read")),
  );
}
