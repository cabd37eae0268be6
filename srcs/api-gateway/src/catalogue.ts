import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { NotFoundError } from '@crud-master/common';

/**
 * The catalogue page at `/`: plain HTML, CSS and ES modules from `srcs/api-gateway/public`,
 * served as they are (no build step), under `/catalogue/<file>`. The page talks to the public
 * API only (`/api/movies`, `/api/billing`, `/health`), so it needs nothing the API does not
 * already offer. Its Content-Security-Policy allows this origin only and no inline script or
 * style at all: titles are user data, and the page writes them with textContent.
 */

export const CATALOGUE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page's own files: a name with one of these extensions, nothing else in the folder. */
const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(css|js|svg)$/;

export interface CatalogueOptions {
  /** Where index.html and its files are (default: srcs/api-gateway/public). */
  dir?: string;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** srcs/api-gateway/public, seen from src/ (tsx) and dist/ (node) alike. */
export function defaultPublicDir(): string {
  return path.resolve(__dirname, '..', 'public');
}

/** Every servable file of `dir`, read now. */
export function loadCatalogueAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of fs.readdirSync(dir).sort()) {
    if (!ASSET_NAME.test(name)) continue;
    const type = TYPES[path.extname(name)];
    if (type) assets.set(name, { type, body: fs.readFileSync(path.join(dir, name)) });
  }
  return assets;
}

/**
 * `GET /` (the page) and `GET /catalogue/:file` (HEAD too). Files are read when the router is
 * built, so a missing one stops the gateway at start, not a visitor later. `no-cache`: the files
 * change with a release of the gateway, and a stale module next to a fresh one would break.
 */
export function createCatalogueRouter({ dir = defaultPublicDir() }: CatalogueOptions = {}): Router {
  const page = fs.readFileSync(path.join(dir, 'index.html'));
  const assets = loadCatalogueAssets(dir);
  const router = new Router({ strict: false });

  router.get('/', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Security-Policy', CATALOGUE_CSP);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = page;
  });

  router.get('/catalogue/:file', (ctx) => {
    const asset = assets.get(ctx.params.file ?? '');
    if (!asset) throw new NotFoundError(`No catalogue file ${ctx.path}`);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = asset.type;
    ctx.body = asset.body;
  });

  return router;
}
