import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { errorBody, KhdError } from '../protocol/errors.js';
import { API_PREFIX } from '../protocol/types.js';
import type { UserRow } from './store/accounts.js';
import type { Services } from './services.js';
import { accountRoutes } from './routes/accounts.js';
import { datasetRoutes } from './routes/datasets.js';
import { environmentRoutes } from './routes/environments.js';
import { logRoutes } from './routes/logs.js';
import { sessionRoutes } from './routes/sessions.js';
import { downloadRoutes } from './routes/downloads.js';
import { submitRoutes } from './routes/submits.js';
import { uploadRoutes } from './routes/uploads.js';
import { webDir } from './package-files.js';
import { webRoutes } from './web.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: UserRow;
  }
}

export interface AppOptions {
  /** Called with unexpected (5xx) errors; tokens never reach it. */
  logError?: (err: Error, request: FastifyRequest) => void;
}

/** The HTTP API as a Fastify instance that does not listen: `khd server` listens, tests inject. */
export function buildApp(services: Services, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024, return503OnClosing: true });
  app.decorateRequest('user', null as unknown as UserRow);
  // Upload bodies are streamed to the extractor, never buffered.
  app.addContentTypeParser(['application/gzip', 'application/x-tar'], (_request, _payload, done) => done(null));

  app.setErrorHandler((err: FastifyError | KhdError, request, reply) => {
    if (err instanceof KhdError) {
      if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
      return reply.status(err.status).send(errorBody(err.code, err.message));
    }
    if ((err as FastifyError).validation) {
      return reply.status(400).send(errorBody('KHD_BAD_REQUEST', `bad request: ${err.message}`));
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status >= 500) {
      options.logError?.(err, request);
      return reply.status(500).send(errorBody('KHD_INTERNAL', 'internal server error: see the server log'));
    }
    return reply.status(status).send(errorBody(status === 413 ? 'KHD_PAYLOAD_TOO_LARGE' : status === 403 ? 'KHD_FORBIDDEN' : 'KHD_BAD_REQUEST', err.message));
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const what = path.startsWith(`${API_PREFIX}/`) ? 'API route' : 'page';
    return reply.status(404).send(errorBody('KHD_NOT_FOUND', `no such ${what}: ${request.method} ${path.slice(0, 200)}`));
  });

  app.register(
    async (api) => {
      api.get('/info', async () => services.info);
      await api.register(accountRoutes(services));
      await api.register(datasetRoutes(services));
      await api.register(environmentRoutes(services));
      await api.register(uploadRoutes(services));
      await api.register(sessionRoutes(services));
      await api.register(downloadRoutes(services));
      await api.register(logRoutes(services));
      await api.register(submitRoutes(services));
    },
    { prefix: API_PREFIX },
  );
  app.register(webRoutes(webDir()));
  return app;
}

/** A preHandler that resolves the bearer token to `request.user` or refuses with 401. */
export function requireUser(services: Services) {
  return async (request: FastifyRequest) => {
    request.user = services.auth.authenticate(request.headers.authorization);
  };
}
