import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { API_PREFIX } from '../protocol/types.js';

/** Names esbuild gives the bundles (`main-ABCD1234.js`): their content never changes under a name. */
const HASHED = /-[A-Z0-9]{8}\.(js|css)(\.map)?(\.br|\.gz)?$/;

/**
 * Security headers of every page: scripts, styles and requests only from this origin (no CDN, no
 * inline script), never framed. Charts set styles through the DOM, which this allows.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * The dashboard at `/`: the files `npm run build` wrote to dist/web, served as they were
 * compressed at build time (brotli or gzip, as the browser accepts), the hashed bundles cached
 * for a year and the page itself revalidated every time.
 */
export function webRoutes(root: string | undefined): FastifyPluginAsync {
  return async (app) => {
    if (!root) {
      app.get('/', async (_request, reply) =>
        reply.type('text/plain; charset=utf-8').send('The khd dashboard is not built: run npm run build, then restart the server.\n'),
      );
      return;
    }
    await app.register(fastifyStatic, {
      root,
      preCompressed: true,
      // The API's own paths are never files: an unknown one stays the API's 404.
      allowedPath: (path) => !path.startsWith(`${API_PREFIX}/`),
      setHeaders(reply, path) {
        void reply.headers({ ...PAGE_HEADERS, 'cache-control': HASHED.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache' });
      },
    });
  };
}
