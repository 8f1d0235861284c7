import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";

/** A Drizzle client over the D1 binding (cheap: no connection is opened). */
export function database(d1: D1Database): DrizzleD1Database {
  return drizzle(d1);
}
