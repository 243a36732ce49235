import { createGunzip } from 'node:zlib';
import type { FastifyPluginAsync } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import type { CreateUploadRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import type { Services } from '../services.js';

const createSchema = {
  body: {
    type: 'object',
    required: ['purpose', 'files'],
    additionalProperties: false,
    properties: {
      purpose: { enum: ['session', 'dataset'] },
      files: {
        type: 'array',
        items: {
          type: 'object',
          required: ['path', 'size', 'mode', 'sha256'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096 },
            size: { type: 'integer', minimum: 0 },
            mode: { type: 'integer', minimum: 0, maximum: 0o7777 },
            sha256: { type: 'string', minLength: 64, maxLength: 64 },
          },
        },
      },
    },
  },
};

type IdParams = { Params: { id: string } };

const MANIFEST_BODY_LIMIT = 512 * 1024 * 1024;

export function uploadRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    // A manifest of a large dataset can be big; everything else stays under the default limit.
    // The CLI sends it gzipped; the limit applies to what it inflates to.
    api.post<{ Body: CreateUploadRequest }>(
      '/uploads',
      {
        schema: createSchema,
        bodyLimit: MANIFEST_BODY_LIMIT,
        preParsing: async (request, _reply, payload) => {
          if (request.headers['content-encoding'] !== 'gzip') return payload;
          delete request.headers['content-length'];
          const gunzip = createGunzip();
          gunzip.on('error', (err: Error & { statusCode?: number }) => {
            err.statusCode = 400;
            err.message = `the manifest is not valid gzip (${err.message})`;
          });
          return payload.pipe(gunzip);
        },
      },
      async (request, reply) => reply.status(201).send(await services.uploads.create(request.user, request.body)),
    );
    api.put<IdParams>('/uploads/:id', async (request, reply) => {
      try {
        const upload = services.uploads.get(request.user, request.params.id);
        const type = request.headers['content-type'];
        if (type !== 'application/gzip' && type !== 'application/x-tar') {
          throw new KhdError('KHD_BAD_REQUEST', 'upload bodies must be a tar, application/x-tar or gzipped as application/gzip');
        }
        const gzip = type === 'application/gzip';
        // Refused before a byte is read; a body without a length is counted as it streams.
        const declared = Number(request.headers['content-length'] ?? 0);
        const max = services.uploads.maxBodyBytes(upload, gzip);
        if (declared > max) {
          throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload body declares ${declared} bytes, more than its files could take (${max})`);
        }
        return await services.uploads.receive(request.user, upload.id, request.raw, gzip);
      } catch (err) {
        // A refused body is not read to its end to keep the connection: it is closed after the answer.
        if (!request.raw.readableEnded) void reply.header('connection', 'close');
        throw err;
      }
    });
    api.delete<IdParams>('/uploads/:id', async (request, reply) => {
      await services.uploads.cancel(request.user, request.params.id);
      return reply.status(204).send();
    });
  };
}
