import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyPluginAsync } from 'fastify';
import { errorBody } from '../protocol/errors.js';
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
    // The file server answers a path with '.', '..' or empty segments with a bare 403: it is
    // refused rather than resolved, and the answer says so in the API's words.
    app.setErrorHandler((err: FastifyError, _request, reply) =>
      err.statusCode === 403
        ? reply.status(403).send(errorBody('KHD_FORBIDDEN', "forbidden path: '.', '..' and empty segments are never resolved"))
        : reply.send(err),
    );
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
