import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";

/** The Drizzle client over D1, with the raw binding for batches Drizzle cannot express. */
export type Db = DrizzleD1Database & { $client: D1Database };

/** A Drizzle client over the D1 binding (cheap: no connection is opened). */
export function database(d1: D1Database): Db {
  return drizzle(d1);
}
