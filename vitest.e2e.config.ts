import { defineConfig } from "vitest/config";

// End-to-end tests run in Node against a real `wrangler dev` started by the README's command.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
