import { Hono } from "hono";
import type { AppEnv } from "../http/types";

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Taskflare API</title><link rel="stylesheet" href="/static/swagger/swagger-ui.css"><link rel="icon" href="/static/swagger/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script></body></html>`;

/** GET /docs: the interactive reference for /openapi.json; its files are static assets. */
export const docsRoutes = new Hono<AppEnv>().get("/docs", (c) => {
  c.header("cache-control", "public, max-age=300");
  return c.html(page);
});
