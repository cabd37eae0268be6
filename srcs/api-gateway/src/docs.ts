import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { NotFoundError } from '@crud-master/common';

/**
 * The API's documentation, served by the gateway itself: `/openapi.yaml` (the contract, from
 * the repository root) and Swagger UI at `/api/docs`, from the locally installed
 * `swagger-ui-dist` package. Nothing is fetched from elsewhere (the hosts may be offline): the
 * page's Content-Security-Policy allows this origin only, and Swagger UI's online validator badge
 * is switched off.
 */

export const SPEC_FILE_NAME = 'openapi.yaml';

/** Finds openapi.yaml by walking up from `startDir` (it sits at the repository root). */
export function findSpecFile(startDir: string): string | undefined {
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, SPEC_FILE_NAME);
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export interface DocsOptions {
  /** openapi.yaml; read once, when the router is built. */
  specFile: string;
  /** Where swagger-ui-dist's files are (default: the installed package). */
  swaggerUiDir?: string;
}

const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Swagger UI sets style attributes and uses data: URIs for its icons.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>crud-master API</title>
    <link rel="stylesheet" href="/api/docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/api/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/api/docs/swagger-ui-bundle.js"></script>
    <script src="/api/docs/swagger-initializer.js"></script>
  </body>
</html>
`;

// A file of its own rather than an inline script, so that the CSP can forbid inline scripts.
const INITIALIZER = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.yaml',
    dom_id: '#swagger-ui',
    deepLinking: true,
    displayRequestDuration: true,
    // No request to the online validator: the page works offline.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

interface Asset {
  type: string;
  body: Buffer;
}

/** The files the page loads: swagger-ui-dist's, plus our initializer. */
function loadAssets(dir: string): Map<string, Asset> {
  const fromDist = (name: string, type: string): [string, Asset] => [name, { type, body: fs.readFileSync(path.join(dir, name)) }];
  return new Map([
    fromDist('swagger-ui.css', 'text/css; charset=utf-8'),
    fromDist('swagger-ui-bundle.js', 'text/javascript; charset=utf-8'),
    fromDist('favicon-16x16.png', 'image/png'),
    fromDist('favicon-32x32.png', 'image/png'),
    ['swagger-initializer.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(INITIALIZER) }],
  ]);
}

function swaggerUiDistDir(): string {
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

/**
 * `GET /openapi.yaml`, `GET /api/docs` and `GET /api/docs/:file` (HEAD too). Every file is read
 * when the router is built, so a missing one stops the gateway at start, not a visitor later.
 */
export function createDocsRouter({ specFile, swaggerUiDir = swaggerUiDistDir() }: DocsOptions): Router {
  const spec = fs.readFileSync(specFile);
  const assets = loadAssets(swaggerUiDir);
  const router = new Router({ strict: false });

  router.get('/openapi.yaml', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'application/yaml; charset=utf-8';
    ctx.body = spec;
  });

  router.get('/api/docs', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Security-Policy', PAGE_CSP);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  });

  router.get('/api/docs/:file', (ctx) => {
    const asset = assets.get(ctx.params.file ?? '');
    if (!asset) throw new NotFoundError(`No documentation file ${ctx.path}`);
    // The files change only with a release of the gateway.
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.type = asset.type;
    ctx.body = asset.body;
  });

  return router;
}
