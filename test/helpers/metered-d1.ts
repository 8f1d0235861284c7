import { env } from "cloudflare:workers";

/** One statement run through a metered binding, with the rows D1 says it read. */
export interface MeteredStatement {
  sql: string;
  rowsRead: number;
}

/**
 * A D1 binding that records each statement's `meta.rows_read` (what D1 bills). `first()` and
 * `raw()` drop meta, so they run as `all()` and convert the rows back, as bench/metered does
 * (column order is the object's key order; the Worker's queries have no duplicate column names).
 */
export function meteredD1(real: D1Database = env.DB): { db: D1Database; statements: MeteredStatement[]; rowsRead: () => number } {
  const statements: MeteredStatement[] = [];
  const record = (sql: string, meta: { rows_read?: number } | undefined) => statements.push({ sql, rowsRead: meta?.rows_read ?? 0 });

  class Statement {
    constructor(
      readonly real: D1PreparedStatement,
      readonly sql: string,
    ) {}
    bind(...values: unknown[]) {
      return new Statement(this.real.bind(...values), this.sql);
    }
    async all() {
      const result = await this.real.all();
      record(this.sql, result.meta);
      return result;
    }
    async run() {
      const result = await this.real.run();
      record(this.sql, result.meta);
      return result;
    }
    async first(column?: string) {
      const { results } = await this.all();
      const row = results[0] as Record<string, unknown> | undefined;
      if (row === undefined) return null;
      return column === undefined ? row : row[column];
    }
    async raw(options?: { columnNames?: boolean }) {
      const { results } = await this.all();
      const rows = (results as Record<string, unknown>[]).map((row) => Object.values(row));
      const first = results[0] as Record<string, unknown> | undefined;
      return options?.columnNames ? [first ? Object.keys(first) : [], ...rows] : rows;
    }
  }

  const db = {
    prepare: (sql: string) => new Statement(real.prepare(sql), sql) as unknown as D1PreparedStatement,
    batch: async (batched: D1PreparedStatement[]) => {
      const own = batched as unknown as Statement[];
      const results = await real.batch(own.map((s) => s.real));
      for (const [i, result] of results.entries()) record(own[i]?.sql ?? "?", result.meta);
      return results;
    },
    exec: (sql: string) => real.exec(sql),
    withSession: () => {
      throw new Error("meteredD1: sessions are not metered");
    },
    dump: () => real.dump(),
  };
  return { db: db as unknown as D1Database, statements, rowsRead: () => statements.reduce((n, s) => n + s.rowsRead, 0) };
}
