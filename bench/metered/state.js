// The counters: everything Cloudflare bills per operation, as the wrapped
// bindings and Durable Objects report it. Module state is shared by the
// fetch/queue/scheduled handlers and every Durable Object, which run in one
// isolate under wrangler dev. Read it at GET /__bench/meter.

function fresh() {
  const now = Date.now();
  return {
    since: now,
    last_activity_at: now,
    d1: { statements: 0, rows_read: 0, rows_written: 0, by_entry: {}, by_statement: {} },
    queues: { messages_sent: 0, send_calls: 0, delivered: 0, acked: 0, implicitly_acked: 0, retried: 0 },
    durable_objects: {
      // Billed requests: RPC calls, fetches and alarm invocations, counted where the object receives them.
      requests: 0,
      // Wall-clock ms the objects were active (union of overlapping invocations of one object) and
      // the plain sum of every invocation's own duration (overlaps counted twice).
      active_ms: 0,
      invocation_ms: 0,
      // Calls made on stubs, counted where they are made: a cross-check of `requests`, not billed.
      stub_calls: 0,
      by_class: {},
    },
    do_storage: {
      sql_statements: 0,
      sql_rows_read: 0,
      sql_rows_written: 0,
      kv_rows_read: 0,
      kv_rows_written: 0,
      delete_all_calls: 0,
      alarm_sets: 0,
      alarm_deletes: 0,
      alarm_reads: 0,
      // Statements Miniflare itself runs in every named object (its __miniflare_do_name table): local only, not counted.
      local_only_statements: 0,
      by_class: {},
      by_statement: {},
    },
    workers: { requests: 0, by_entry: {}, responses_5xx: 0, uncaught_errors: 0 },
  };
}

let state = fresh();
const inFlight = { workers: 0, durable_objects: 0 };

const bump = (obj, key, by = 1) => {
  obj[key] = (obj[key] ?? 0) + by;
};

function touch() {
  state.last_activity_at = Date.now();
}

function classCounters(className) {
  state.durable_objects.by_class[className] ??= {
    requests: 0,
    by_method: {},
    instances: 0,
    failed: 0,
    active_ms: 0,
    invocation_ms: 0,
  };
  return state.durable_objects.by_class[className];
}

function storageCounters(className) {
  state.do_storage.by_class[className] ??= {
    sql_statements: 0,
    sql_rows_read: 0,
    sql_rows_written: 0,
    kv_rows_read: 0,
    kv_rows_written: 0,
    alarm_sets: 0,
    alarm_deletes: 0,
    // Key-value rows written per key name: what the rows are for.
    kv_written_by_key: {},
  };
  return state.do_storage.by_class[className];
}

/** Distinct key names counted per class before the rest share one bucket (keys may be run ids). */
const MAX_KEYS = 50;

const statementKey = (prefix, sql) => `${prefix} | ${sql.replace(/\s+/g, " ").trim().slice(0, 140)}`;

export const meter = {
  snapshot: () => ({ ...state, in_flight: { ...inFlight }, now: Date.now() }),
  reset() {
    state = fresh();
    return state;
  },
  touch,

  workerRequest(entry) {
    touch();
    state.workers.requests++;
    bump(state.workers.by_entry, entry);
  },
  workerResponse(status) {
    if (status >= 500) state.workers.responses_5xx++;
  },
  workerError() {
    state.workers.uncaught_errors++;
  },
  /** Counts a Worker invocation as in flight until `promise` settles (waitQuiet waits for none). */
  track(promise) {
    inFlight.workers++;
    const settle = () => {
      inFlight.workers--;
      touch();
    };
    promise.then(settle, settle);
    return promise;
  },

  /** Adds one statement's D1 meta to the totals, per entry point and per statement text. */
  d1Statement(entry, sql, meta) {
    touch();
    const read = meta?.rows_read ?? 0;
    const written = meta?.rows_written ?? 0;
    state.d1.statements++;
    state.d1.rows_read += read;
    state.d1.rows_written += written;
    for (const [map, key] of [
      [state.d1.by_entry, entry],
      [state.d1.by_statement, statementKey(entry, sql)],
    ]) {
      map[key] ??= { statements: 0, rows_read: 0, rows_written: 0 };
      map[key].statements++;
      map[key].rows_read += read;
      map[key].rows_written += written;
    }
  },

  queue(field, by = 1) {
    touch();
    state.queues[field] += by;
  },

  stubCall() {
    touch();
    state.durable_objects.stub_calls++;
  },

  /** A Durable Object instance was constructed (an object woke up). */
  objectCreated(className) {
    touch();
    classCounters(className).instances++;
  },

  /**
   * A clock for one Durable Object instance. `begin(method)` starts an
   * invocation (a billed request unless `method` is null: the object's own
   * blockConcurrencyWhile or waitUntil work) and returns its end. Time counts
   * from entry to settlement; while several invocations overlap, the object's
   * active time counts once (union) and their plain sum is kept beside it.
   * The end takes `failed`: the invocation threw or rejected.
   */
  objectClock(className) {
    let active = 0;
    let activeSince = 0;
    return {
      begin(method) {
        touch();
        const started = Date.now();
        if (method !== null) {
          const c = classCounters(className);
          state.durable_objects.requests++;
          c.requests++;
          bump(c.by_method, method);
        }
        if (active++ === 0) activeSince = started;
        inFlight.durable_objects++;
        let ended = false;
        return (failed = false) => {
          if (ended) return;
          ended = true;
          const now = Date.now();
          inFlight.durable_objects--;
          touch();
          // Time before the last reset belongs to the previous measurement.
          const c = classCounters(className);
          if (failed) c.failed++;
          const invocation = now - Math.max(started, state.since);
          c.invocation_ms += invocation;
          state.durable_objects.invocation_ms += invocation;
          if (--active === 0) {
            const union = now - Math.max(activeSince, state.since);
            c.active_ms += union;
            state.durable_objects.active_ms += union;
          }
        };
      },
    };
  },

  /** Storage counters of one class: `field` is one of do_storage's totals. */
  storage(className, field, by = 1) {
    if (by === 0) return;
    touch();
    state.do_storage[field] += by;
    const c = storageCounters(className);
    if (field in c) c[field] += by;
  },
  /** Key-value rows written under `keys` (names; past MAX_KEYS distinct names per class, one "(other keys)" bucket). */
  kvWrites(className, keys) {
    const byKey = storageCounters(className).kv_written_by_key;
    for (const key of keys) {
      const name = key in byKey || Object.keys(byKey).length < MAX_KEYS ? key : "(other keys)";
      bump(byKey, name);
    }
  },
  /** Rows a SQL statement read and wrote (harvested from its cursor, possibly in steps). */
  sqlRows(className, sql, read, written, isNewStatement) {
    touch();
    const c = storageCounters(className);
    if (isNewStatement) {
      state.do_storage.sql_statements++;
      c.sql_statements++;
    }
    state.do_storage.sql_rows_read += read;
    state.do_storage.sql_rows_written += written;
    c.sql_rows_read += read;
    c.sql_rows_written += written;
    const key = statementKey(className, sql);
    state.do_storage.by_statement[key] ??= { statements: 0, rows_read: 0, rows_written: 0 };
    const s = state.do_storage.by_statement[key];
    if (isNewStatement) s.statements++;
    s.rows_read += read;
    s.rows_written += written;
  },
};
