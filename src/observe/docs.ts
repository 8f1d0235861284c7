import { html } from "hono/html";

/**
 * Swagger UI comes from jsDelivr, pinned and checked by Subresource
 * Integrity, as FastAPI's /docs does: its 460 kB (gzip) would outweigh the
 * whole Worker, and serving it as static assets put the asset layer in front
 * of every request. Bump all three together with the swagger-ui-dist
 * devDependency (the browser test serves that package in the CDN's place and
 * the browser enforces these hashes).
 */
export const SWAGGER_UI = {
  base: "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0",
  scriptIntegrity: "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
  stylesheetIntegrity: "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
};

/** Starts the interactive reference on the document the Worker generates from its zod schemas (served at /static/docs.js). */
export const docsScript = `window.addEventListener("load", () => {
  if (typeof SwaggerUIBundle !== "function") return; // offline: the plain route list stays
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: false, tryItOutEnabled: true });
});
`;

const METHODS = ["get", "head", "post", "put", "patch", "delete"] as const;

interface OpenApiPaths {
  paths?: Record<string, Partial<Record<(typeof METHODS)[number], { summary?: string }>>>;
}

/**
 * GET /docs. The page lists every operation itself, so it is a reference
 * even where the CDN cannot be reached; Swagger UI replaces the list with the
 * interactive one when it loads.
 */
export function docsPage(document: OpenApiPaths) {
  const operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    METHODS.flatMap((method) => (item[method] ? [{ method: method.toUpperCase(), path, summary: item[method]?.summary ?? "" }] : [])),
  );
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Taskflare API</title>
<link rel="stylesheet" href="${SWAGGER_UI.base}/swagger-ui.css" integrity="${SWAGGER_UI.stylesheetIntegrity}" crossorigin="anonymous"></head>
<body><div id="swagger-ui"><main style="font-family:system-ui,sans-serif;max-width:960px;margin:2em auto">
<h1>Taskflare API</h1>
<p>The machine-readable reference is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). The interactive view loads Swagger UI from cdn.jsdelivr.net.</p>
<ul id="operations">${operations.map((o) => html`<li><code>${o.method} ${o.path}</code> ${o.summary}</li>`)}</ul>
</main></div>
<script src="${SWAGGER_UI.base}/swagger-ui-bundle.js" integrity="${SWAGGER_UI.scriptIntegrity}" crossorigin="anonymous"></script>
<script src="/static/docs.js"></script></body></html>`;
}
