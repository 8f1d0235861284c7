import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export const TEST_API_TOKEN = "test-token-0123456789abcdef";
export const TEST_SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // Every outbound fetch goes to a recording receiver instead of the network.
          outboundService: "receiver",
          workers: [{ name: "receiver", modules: true, scriptPath: "./test/helpers/receiver-worker.mjs", compatibilityDate: "2026-11-01" }],
          // Explicit values, so a developer's own .dev.vars cannot change what tests see.
          bindings: {
            TEST_MIGRATIONS: migrations,
            API_TOKEN: TEST_API_TOKEN,
            LOCAL_DEVELOPMENT: "false",
            ALLOW_PRIVATE_TARGETS: "false",
            // Outbound requests in tests are signed, so receivers can verify them as a real one would.
            WEBHOOK_SIGNING_SECRET: TEST_SIGNING_SECRET,
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      exclude: ["test/e2e/**"],
      setupFiles: ["./test/helpers/apply-migrations.ts"],
      // The Worker logs one JSON line per request and state change; tests assert on behaviour instead.
      onConsoleLog: (line: string) => process.env.SHOW_LOGS === "1" || !line.startsWith('{"time"'),
    },
  };
});
