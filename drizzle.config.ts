import { defineConfig } from "drizzle-kit";

// Generates plain SQL migrations; wrangler applies them (`npm run db:migrate:local`).
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
