#!/usr/bin/env node
// Copies the API reference page's files from swagger-ui-dist into the static
// assets folder, so /docs needs no CDN and they never weigh on the Worker bundle.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "node_modules", "swagger-ui-dist");
const target = join(root, "public", "static", "swagger");
if (!existsSync(source)) {
  console.warn("swagger-ui-dist is not installed; /docs will have no assets");
  process.exit(0);
}
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]) copyFileSync(join(source, file), join(target, file));
