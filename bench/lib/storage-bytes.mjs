// What the rows a run leaves behind weigh on disk: every SQLite file of a
// stopped local server (D1 databases and each Durable Object's own storage)
// read with SQLite's dbstat, per table with its indexes, over the table's
// rows. Real rows written by the real Worker; sizes in whole pages (as billed
// storage is measured) and the rows' own payload.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

const INTERNAL = /^(sqlite_|_cf_|__miniflare|d1_migrations)/;

/** Bytes and rows per table (indexes included) of one SQLite file. */
function tableBytes(file) {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const owner = new Map(
      db
        .prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table','index')")
        .all()
        .map((r) => [r.name, r.tbl_name]),
    );
    const tables = {};
    for (const { name, bytes, payload } of db
      .prepare("SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload FROM dbstat GROUP BY name")
      .all()) {
      const table = owner.get(name) ?? name;
      if (INTERNAL.test(table)) continue;
      tables[table] ??= { rows: 0, bytes: 0, payload: 0 };
      tables[table].bytes += bytes;
      tables[table].payload += payload;
    }
    for (const table of Object.keys(tables)) {
      tables[table].rows = db.prepare(`SELECT count(*) AS n FROM "${table.replaceAll('"', '""')}"`).get().n;
    }
    const { page_count: pages } = db.prepare("PRAGMA page_count").get();
    const { page_size: pageSize } = db.prepare("PRAGMA page_size").get();
    return { tables, fileBytes: pages * pageSize };
  } finally {
    db.close();
  }
}

/**
 * Per store (`d1`, or the Durable Object class): objects, bytes on disk, and
 * per table its rows, bytes and bytes per row, summed over every file.
 */
export function storageBytes(persistTo) {
  const stores = {};
  const add = (store, file) => {
    const { tables, fileBytes } = tableBytes(file);
    stores[store] ??= { objects: 0, file_bytes: 0, tables: {} };
    const s = stores[store];
    s.objects++;
    s.file_bytes += fileBytes;
    for (const [name, t] of Object.entries(tables)) {
      s.tables[name] ??= { rows: 0, bytes: 0, payload: 0 };
      const total = s.tables[name];
      total.rows += t.rows;
      total.bytes += t.bytes;
      total.payload += t.payload;
    }
  };
  const sqliteFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  const v3 = join(persistTo, "v3");
  for (const dir of readdirSync(join(v3, "d1"))) for (const f of sqliteFiles(join(v3, "d1", dir))) add("d1", join(v3, "d1", dir, f));
  for (const dir of readdirSync(join(v3, "do"))) {
    const className = dir.slice(dir.lastIndexOf("-") + 1);
    for (const f of sqliteFiles(join(v3, "do", dir))) add(className, join(v3, "do", dir, f));
  }
  for (const s of Object.values(stores))
    for (const t of Object.values(s.tables)) {
      // Whole pages over rows (what a few rows cost), and the rows' own bytes (what many approach).
      t.bytes_per_row = t.rows ? Math.round(t.bytes / t.rows) : null;
      t.payload_per_row = t.rows ? Math.round(t.payload / t.rows) : null;
    }
  return stores;
}
